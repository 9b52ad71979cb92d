// Crash-safe file output and whole-file input.
// Every file the library writes goes to a temporary name in the destination directory
// (`<path>.tmp.<pid>.<n>`), is fsync'ed, then renamed over `path`, so a reader sees either the old
// file or the complete new one, never a prefix. The temporary is removed on any failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bna/status.hpp"

namespace bna::io {

// Writes `bytes` to `path` atomically (temp + fsync + rename). Errors: kIoError naming the path and
// the OS reason (directory missing, permission, disk full).
Status write_file_atomic(const std::string& path, std::string_view bytes);

// Reads a whole file. Errors: kNotFound when it does not exist, kIoError otherwise.
Expected<std::string> read_file(const std::string& path);

// Streaming atomic writer: open() creates the temporary, write() appends, commit() fsyncs and renames.
// Destroying an uncommitted writer (or a failed write) removes the temporary; `path` is untouched.
class AtomicWriter {
 public:
  static Expected<AtomicWriter> open(const std::string& path);
  AtomicWriter(AtomicWriter&& o) noexcept;
  AtomicWriter& operator=(AtomicWriter&& o) noexcept;
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter();

  Status write(const void* data, size_t n);  // after a failure every later call returns that error
  Status commit();                           // at most once; the writer is closed afterwards
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }
  uint64_t bytes_written() const { return written_; }

 private:
  AtomicWriter() = default;
  void abandon();
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
  Status failed_;
};

}  // namespace bna::io
