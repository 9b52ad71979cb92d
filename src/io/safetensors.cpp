// safetensors reader (mmap) and atomic writer. See include/bna/safetensors.hpp for the format and
// the validation rules. The header JSON is parsed without exceptions (nlohmann's allow_exceptions =
// false); every number is range-checked before it is used as a size or an offset.
#include "bna/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "bna/dtype.hpp"
#include "bna/io.hpp"

namespace bna::st {

// Either an mmap'ed region (base from mmap, unmapped on destruction) or an owned copy.
struct Mapping {
  const uint8_t* base = nullptr;
  size_t size = 0;
  bool mapped = false;
  std::vector<uint8_t> owned;
  ~Mapping() {
    if (mapped && base != nullptr) ::munmap(const_cast<uint8_t*>(base), size);
  }
};

namespace {

// A header larger than this is rejected (the reference implementation uses 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct DtypeEntry { Dtype t; const char* name; size_t size; };
constexpr DtypeEntry kDtypes[] = {
    {Dtype::kF32, "F32", 4}, {Dtype::kF16, "F16", 2}, {Dtype::kBF16, "BF16", 2}, {Dtype::kF64, "F64", 8},
    {Dtype::kI64, "I64", 8}, {Dtype::kI32, "I32", 4}, {Dtype::kI16, "I16", 2},   {Dtype::kI8, "I8", 1},
    {Dtype::kU8, "U8", 1},   {Dtype::kBool, "BOOL", 1}};

bool mul_overflow(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// numel * elem bytes with overflow checks; false on overflow or a negative dimension.
bool byte_count(const std::vector<int64_t>& shape, size_t elem, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  return !mul_overflow(n, elem, out);
}

}  // namespace

const char* dtype_name(Dtype t) {
  for (const auto& e : kDtypes) if (e.t == t) return e.name;
  return "?";
}

size_t dtype_size(Dtype t) {
  for (const auto& e : kDtypes) if (e.t == t) return e.size;
  return 0;
}

Expected<Dtype> parse_dtype(std::string_view name) {
  for (const auto& e : kDtypes) if (name == e.name) return e.t;
  return unimplemented("safetensors: dtype '" + std::string(name) +
                       "', expected one of F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL");
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

File::~File() = default;

Expected<File> File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return not_found("safetensors: no such file '" + path + "'");
    return io_error("safetensors: cannot open '" + path + "': " + std::strerror(err));
  }
  struct stat sb{};
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    return io_error("safetensors: '" + path + "' is not a regular file");
  }
  auto m = std::make_shared<Mapping>();
  m->size = static_cast<size_t>(sb.st_size);
  if (m->size > 0) {
    void* p = ::mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return io_error("safetensors: cannot map '" + path + "': " + std::strerror(err));
    }
    m->base = static_cast<const uint8_t*>(p);
    m->mapped = true;
  }
  ::close(fd);  // the mapping stays valid after close
  return from_mapping(std::move(m), path);
}

Expected<File> File::parse(const uint8_t* data, size_t n) {
  auto m = std::make_shared<Mapping>();
  m->owned.assign(data, data + n);
  m->base = m->owned.data();
  m->size = n;
  return from_mapping(std::move(m), "<memory>");
}

Expected<File> File::from_mapping(std::shared_ptr<const Mapping> m, std::string path) {
  const std::string where = "safetensors: '" + path + "': ";
  if (m->size < 8) {
    return corrupt(where + "file is " + std::to_string(m->size) + " bytes, expected at least 8 (header length)");
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | m->base[i];
  if (hlen > kMaxHeaderBytes) {
    return corrupt(where + "header length " + std::to_string(hlen) + " exceeds the limit " +
                   std::to_string(kMaxHeaderBytes));
  }
  if (hlen > m->size - 8) {
    return corrupt(where + "header length " + std::to_string(hlen) + " but only " + std::to_string(m->size - 8) +
                   " bytes follow (truncated header)");
  }
  const char* hbeg = reinterpret_cast<const char*>(m->base + 8);
  if (hlen == 0 || hbeg[0] != '{') return corrupt(where + "header does not start with '{'");
  nlohmann::json h = nlohmann::json::parse(hbeg, hbeg + hlen, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || !h.is_object()) return corrupt(where + "header is not a valid JSON object");

  const uint64_t data_size = m->size - 8 - hlen;
  const uint8_t* data_base = m->base + 8 + hlen;
  File f;
  struct Span { uint64_t begin, end; size_t idx; };
  std::vector<Span> spans;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return corrupt(where + "__metadata__ is not an object");
      for (auto mt = v.begin(); mt != v.end(); ++mt) {
        if (!mt.value().is_string()) return corrupt(where + "__metadata__['" + mt.key() + "'] is not a string");
        f.metadata_[mt.key()] = mt.value().get<std::string>();
      }
      continue;
    }
    const std::string tw = where + "tensor '" + name + "': ";
    if (!v.is_object()) return corrupt(tw + "entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto of = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return corrupt(tw + "missing string field 'dtype'");
    if (sh == v.end() || !sh->is_array()) return corrupt(tw + "missing array field 'shape'");
    if (of == v.end() || !of->is_array() || of->size() != 2) {
      return corrupt(tw + "missing field 'data_offsets' = [begin, end]");
    }
    auto dtype = parse_dtype(dt->get<std::string>());
    if (!dtype) return Status(dtype.status().code(), tw + dtype.status().message());
    TensorInfo t;
    t.name = name;
    t.dtype = *dtype;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return corrupt(tw + "shape entry " + d.dump() + " is not a non-negative integer");
      }
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    if (!(*of)[0].is_number_unsigned() || !(*of)[1].is_number_unsigned()) {
      return corrupt(tw + "data_offsets " + of->dump() + " are not non-negative integers");
    }
    const uint64_t b = (*of)[0].get<uint64_t>(), e = (*of)[1].get<uint64_t>();
    if (b > e) return corrupt(tw + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] begin > end");
    if (e > data_size) {
      return corrupt(tw + "data_offsets end " + std::to_string(e) + " is out of range, the data region has " +
                     std::to_string(data_size) + " bytes");
    }
    uint64_t want = 0;
    if (!byte_count(t.shape, dtype_size(t.dtype), &want)) {
      return corrupt(tw + "shape " + shape_str(t.shape) + " overflows");
    }
    if (want != e - b) {
      return corrupt(tw + "dtype " + dtype_name(t.dtype) + " shape " + shape_str(t.shape) + " needs " +
                     std::to_string(want) + " bytes but data_offsets span " + std::to_string(e - b));
    }
    t.data = data_base + b;
    t.nbytes = static_cast<size_t>(want);
    spans.push_back({b, e, f.tensors_.size()});
    f.tensors_.push_back(std::move(t));
  }
  // The tensors must tile [0, data_size) exactly.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  std::vector<TensorInfo> ordered;
  ordered.reserve(spans.size());
  for (const Span& s : spans) {
    const std::string& nm = f.tensors_[s.idx].name;
    if (s.begin < pos) {
      return corrupt(where + "tensor '" + nm + "' data_offsets [" + std::to_string(s.begin) + ", " +
                     std::to_string(s.end) + "] overlap the previous tensor, which ends at " + std::to_string(pos));
    }
    if (s.begin > pos) {
      return corrupt(where + "hole in the data region: bytes [" + std::to_string(pos) + ", " +
                     std::to_string(s.begin) + ") before tensor '" + nm + "' belong to no tensor");
    }
    pos = s.end;
    ordered.push_back(std::move(f.tensors_[s.idx]));
  }
  if (pos != data_size) {
    return corrupt(where + "data region has " + std::to_string(data_size) + " bytes but the tensors cover " +
                   std::to_string(pos));
  }
  f.tensors_ = std::move(ordered);
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
  f.map_ = std::move(m);
  f.path_ = std::move(path);
  return f;
}

const TensorInfo* File::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Expected<Checkpoint> Checkpoint::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string single_path = dir + "/model.safetensors";
  Checkpoint c;
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    BNA_ASSIGN_OR_RETURN(std::string text, io::read_file(index_path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return corrupt("safetensors: '" + index_path + "' is not a JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) {
      return corrupt("safetensors: '" + index_path + "' has no object 'weight_map'");
    }
    std::map<std::string, size_t> shard_idx;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) {
        return corrupt("safetensors: '" + index_path + "' weight_map['" + it.key() + "'] is not a string");
      }
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
        return corrupt("safetensors: '" + index_path + "' shard name '" + shard + "' must be a plain file name");
      }
      if (!shard_idx.count(shard)) {
        auto f = File::open(dir + "/" + shard);
        if (!f) {
          if (f.status().code() == StatusCode::kNotFound) {
            return not_found("safetensors: shard '" + shard + "' named by '" + index_path + "' (for tensor '" +
                             it.key() + "') is missing");
          }
          return f.status();
        }
        shard_idx[shard] = c.files_.size();
        c.files_.push_back(std::move(*f));
      }
    }
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      const File& f = c.files_[shard_idx[it.value().get<std::string>()]];
      const TensorInfo* t = f.find(it.key());
      if (t == nullptr) {
        return corrupt("safetensors: tensor '" + it.key() + "' is not in shard '" + f.path() + "' as '" +
                       index_path + "' says");
      }
      c.index_[it.key()] = t;
    }
    // Tensors a shard holds beyond the index are still reachable, unless two files claim them.
    for (const File& f : c.files_) {
      for (const TensorInfo& t : f.tensors()) {
        auto it = c.index_.find(t.name);
        if (it == c.index_.end()) {
          c.index_[t.name] = &t;
        } else if (it->second != &t && wm->find(t.name) == wm->end()) {
          return corrupt("safetensors: tensor '" + t.name + "' is in two shards");
        }
      }
    }
    return c;
  }
  if (fs::exists(single_path, ec)) {
    BNA_ASSIGN_OR_RETURN(File f, File::open(single_path));
    c.files_.push_back(std::move(f));
    for (const TensorInfo& t : c.files_[0].tensors()) c.index_[t.name] = &t;
    return c;
  }
  return not_found("safetensors: '" + dir + "' has neither model.safetensors nor model.safetensors.index.json");
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> r;
  r.reserve(index_.size());
  for (const auto& kv : index_) r.push_back(kv.first);
  return r;
}

Status write(const std::string& path, const std::vector<WriteTensor>& tensors,
             const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = std::move(m);
  }
  std::set<std::string> seen;
  std::vector<uint64_t> sizes;
  uint64_t off = 0;
  for (const WriteTensor& t : tensors) {
    if (t.name.empty()) return invalid_argument("safetensors: write '" + path + "': empty tensor name");
    if (t.name == "__metadata__") return invalid_argument("safetensors: write: tensor name '__metadata__' is reserved");
    if (!seen.insert(t.name).second) return invalid_argument("safetensors: write: duplicate tensor name '" + t.name + "'");
    uint64_t nb = 0;
    if (!byte_count(t.shape, dtype_size(t.dtype), &nb)) {
      return invalid_argument("safetensors: write: tensor '" + t.name + "' shape " + shape_str(t.shape) +
                              " has a negative dimension or overflows");
    }
    if (nb > 0 && t.data == nullptr) return invalid_argument("safetensors: write: tensor '" + t.name + "' has null data");
    nlohmann::ordered_json e;
    e["dtype"] = dtype_name(t.dtype);
    e["shape"] = t.shape;
    e["data_offsets"] = {off, off + nb};
    h[t.name] = std::move(e);
    sizes.push_back(nb);
    off += nb;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  BNA_ASSIGN_OR_RETURN(io::AtomicWriter w, io::AtomicWriter::open(path));
  BNA_RETURN_IF_ERROR(w.write(len, 8));
  BNA_RETURN_IF_ERROR(w.write(header.data(), header.size()));
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (sizes[i] > 0) BNA_RETURN_IF_ERROR(w.write(tensors[i].data, sizes[i]));
  }
  return w.commit();
}

Status read_f32(const TensorInfo& t, float* dst) {
  const size_t n = static_cast<size_t>(t.numel());
  switch (t.dtype) {
    case Dtype::kF32: std::memcpy(dst, t.data, n * 4); return Status::ok();
    case Dtype::kF16:
    case Dtype::kBF16: {
      const uint8_t* p = static_cast<const uint8_t*>(t.data);
      const bool bf = t.dtype == Dtype::kBF16;
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf ? bf16_to_float(h) : f16_to_float(h);
      }
      return Status::ok();
    }
    default:
      return invalid_argument("safetensors: tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) +
                              ", expected F32, F16 or BF16");
  }
}

}  // namespace bna::st
