// safetensors files (the Hugging Face weight format): a little-endian u64 header length N, N bytes of
// JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}), then
// the data region. Offsets are relative to the data region.
//
// Reader: the file is memory-mapped read-only; TensorInfo::data points into the mapping, which lives as
// long as any File (or Checkpoint) that refers to it. open() validates everything before returning:
// the header length against the file size, the JSON, every dtype, shape and offset pair, that each
// tensor's byte count equals numel * dtype size, and that the tensors tile the data region exactly
// (sorted by offset, no overlap, no hole, nothing after the last tensor), as the reference
// implementation requires. Data pointers carry no alignment promise; read_f32 copies with memcpy.
// Writer: tensors in the order given, packed; the header is padded with spaces to a multiple of 8 bytes
// so the data region starts 8-aligned; written atomically (io.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bna/status.hpp"

namespace bna::st {

enum class Dtype { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };
const char* dtype_name(Dtype t);  // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
size_t dtype_size(Dtype t);        // bytes per element
// Accepts exactly the names dtype_name returns. Errors: kUnimplemented naming the dtype (e.g. "F8_E4M3").
Expected<Dtype> parse_dtype(std::string_view name);

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;   // empty = scalar (one element)
  const void* data = nullptr;   // into the mapping; unaligned in general
  size_t nbytes = 0;
  int64_t numel() const;
};

struct Mapping;  // an mmap'ed file or an owned buffer

// One .safetensors file, memory-mapped, read-only. Movable, not copyable.
class File {
 public:
  // Errors: kNotFound (no file), kIoError (cannot open/map), kCorrupt (any header problem, naming the
  // tensor and field), kUnimplemented (a dtype this library does not know).
  static Expected<File> open(const std::string& path);
  // Parses an in-memory file (copied into an owned buffer). Same validation as open().
  static Expected<File> parse(const uint8_t* data, size_t n);

  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file (data offset) order
  const TensorInfo* find(std::string_view name) const;                 // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  File() = default;
  static Expected<File> from_mapping(std::shared_ptr<const Mapping> m, std::string path);
  std::shared_ptr<const Mapping> map_;
  std::string path_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// A Hugging Face model directory: `model.safetensors`, or `model.safetensors.index.json`
// ({"weight_map": {tensor: shard file}}) plus its shards. Every shard named in the index is opened and
// every tensor the index names must be in the shard it names.
class Checkpoint {
 public:
  // Errors: kNotFound (neither file, or a missing shard, naming it), kCorrupt (bad index JSON, a shard
  // name with a '/', a tensor missing from its shard or present in two files), and File::open's.
  static Expected<Checkpoint> open_dir(const std::string& dir);
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  std::vector<std::string> names() const;               // sorted
  size_t num_files() const { return files_.size(); }

 private:
  std::vector<File> files_;
  std::map<std::string, const TensorInfo*, std::less<>> index_;
};

struct WriteTensor {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // numel * dtype_size bytes; may be nullptr only when numel == 0
};

// Atomic write (temp file + fsync + rename). Errors: kInvalidArgument for an empty or duplicate name,
// the reserved name "__metadata__", a negative dimension or an element count that overflows, null
// data; kIoError from the filesystem.
Status write(const std::string& path, const std::vector<WriteTensor>& tensors,
             const std::map<std::string, std::string>& metadata = {});

// Converts tensor t (F32, F16 or BF16) to f32 into dst (t.numel() floats). Errors: kInvalidArgument
// naming the tensor and its dtype for any other dtype.
Status read_f32(const TensorInfo& t, float* dst);

}  // namespace bna::st
