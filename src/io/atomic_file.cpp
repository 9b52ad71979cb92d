// Atomic file output (temp file in the destination directory + fsync + rename) and whole-file reads.
// The temporary lives next to the target so rename() never crosses filesystems; its name carries the
// pid and a process-wide counter so concurrent writers of the same path never collide.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "bna/io.hpp"

namespace bna::io {
namespace {

std::atomic<uint64_t> g_temp_counter{0};

Status os_error(const std::string& what, const std::string& path, int err) {
  return io_error("io: " + what + " '" + path + "': " + std::strerror(err));
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Expected<AtomicWriter> AtomicWriter::open(const std::string& path) {
  if (path.empty()) return invalid_argument("io: empty output path");
  AtomicWriter w;
  w.path_ = path;
  w.tmp_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_temp_counter.fetch_add(1));
  w.fd_ = ::open(w.tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w.fd_ < 0) return os_error("cannot create temporary for", path, errno);
  return w;
}

AtomicWriter::AtomicWriter(AtomicWriter&& o) noexcept
    : path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), fd_(o.fd_), written_(o.written_),
      failed_(std::move(o.failed_)) {
  o.fd_ = -1;
  o.tmp_.clear();
}

AtomicWriter& AtomicWriter::operator=(AtomicWriter&& o) noexcept {
  if (this != &o) {
    abandon();
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    fd_ = o.fd_;
    written_ = o.written_;
    failed_ = std::move(o.failed_);
    o.fd_ = -1;
    o.tmp_.clear();
  }
  return *this;
}

AtomicWriter::~AtomicWriter() { abandon(); }

void AtomicWriter::abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
  }
  tmp_.clear();
}

Status AtomicWriter::write(const void* data, size_t n) {
  if (!failed_.is_ok()) return failed_;
  if (fd_ < 0) return internal_error("io: write to closed writer for '" + path_ + "'");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const size_t chunk = n < (size_t{1} << 30) ? n : (size_t{1} << 30);
    const ssize_t k = ::write(fd_, p, chunk);
    if (k < 0) {
      if (errno == EINTR) continue;
      failed_ = os_error("write failed for", path_, errno);
      abandon();
      return failed_;
    }
    p += k;
    n -= static_cast<size_t>(k);
    written_ += static_cast<uint64_t>(k);
  }
  return Status::ok();
}

Status AtomicWriter::commit() {
  if (!failed_.is_ok()) return failed_;
  if (fd_ < 0) return internal_error("io: commit of closed writer for '" + path_ + "'");
  if (::fsync(fd_) != 0) {
    failed_ = os_error("fsync failed for", path_, errno);
    abandon();
    return failed_;
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    failed_ = os_error("close failed for", path_, errno);
    ::unlink(tmp_.c_str());
    return failed_;
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    failed_ = os_error("rename failed for", path_, errno);
    ::unlink(tmp_.c_str());
    return failed_;
  }
  // Make the rename itself durable.
  const int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  tmp_.clear();
  return Status::ok();
}

Status write_file_atomic(const std::string& path, std::string_view bytes) {
  BNA_ASSIGN_OR_RETURN(AtomicWriter w, AtomicWriter::open(path));
  BNA_RETURN_IF_ERROR(w.write(bytes.data(), bytes.size()));
  return w.commit();
}

Expected<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return not_found("io: no such file '" + path + "'");
    return os_error("cannot open", path, err);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return io_error("io: '" + path + "' is not a regular file");
  }
  std::string out;
  try {
    out.resize(static_cast<size_t>(st.st_size));
  } catch (const std::exception&) {
    ::close(fd);
    return io_error("io: cannot allocate " + std::to_string(st.st_size) + " bytes for '" + path + "'");
  }
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t k = ::read(fd, out.data() + got, out.size() - got);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      const int err = errno;
      ::close(fd);
      return os_error("read failed for", path, err);
    }
    if (k == 0) break;
    got += static_cast<size_t>(k);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

}  // namespace bna::io
