// Token corpora: in-memory and memory-mapped token files, train/val split, seeded LM windows.
// Token files are read through mmap (read-only, MAP_PRIVATE); ids are decoded little-endian with
// memcpy, so neither alignment nor host byte order matters.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bna/data.hpp"
#include "bna/io.hpp"
#include "bna/rng.hpp"

namespace bna::data {

namespace {
std::string S(int64_t v) { return std::to_string(v); }
constexpr char kMagic[8] = {'B', 'N', 'A', 'T', 'O', 'K', 0, 1};
constexpr size_t kHeader = 32;

uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void put_le(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

class MemoryTokens final : public TokenSource {
 public:
  MemoryTokens(std::vector<int32_t> t, int64_t vocab) : t_(std::move(t)), vocab_(vocab) {
    for (int32_t x : t_) vocab_ = std::max<int64_t>(vocab_, static_cast<int64_t>(x) + 1);
  }
  int64_t size() const override { return static_cast<int64_t>(t_.size()); }
  int32_t at(int64_t i) const override { return t_[static_cast<size_t>(i)]; }
  int64_t vocab_size() const override { return vocab_; }

 private:
  std::vector<int32_t> t_;
  int64_t vocab_ = 0;
};

class MappedTokens final : public TokenSource {
 public:
  MappedTokens(void* base, size_t len, int bytes, int64_t n, int64_t vocab)
      : base_(base), len_(len), bytes_(bytes), n_(n), vocab_(vocab) {}
  ~MappedTokens() override { if (base_ != nullptr) munmap(base_, len_); }
  int64_t size() const override { return n_; }
  int32_t at(int64_t i) const override {
    const uint8_t* p = static_cast<const uint8_t*>(base_) + kHeader + static_cast<size_t>(i) * bytes_;
    return static_cast<int32_t>(get_le(p, bytes_));
  }
  int64_t vocab_size() const override { return vocab_; }

 private:
  void* base_;
  size_t len_;
  int bytes_;
  int64_t n_, vocab_;
};
}  // namespace

std::unique_ptr<TokenSource> memory_tokens(std::vector<int32_t> tokens, int64_t vocab_size) {
  return std::make_unique<MemoryTokens>(std::move(tokens), vocab_size);
}

Status write_token_file(const std::string& path, std::span<const int32_t> tokens, int64_t vocab_size,
                        int token_bytes) {
  if (token_bytes != 2 && token_bytes != 4)
    return invalid_argument("token file: token_bytes=" + S(token_bytes) + ", expected 2 or 4");
  if (vocab_size < 0) return invalid_argument("token file: vocab_size=" + S(vocab_size) + ", expected >= 0");
  std::string buf(kMagic, kMagic + 8);
  put_le(buf, static_cast<uint64_t>(token_bytes), 4);
  put_le(buf, 0, 4);
  put_le(buf, tokens.size(), 8);
  put_le(buf, static_cast<uint64_t>(vocab_size), 8);
  buf.reserve(kHeader + tokens.size() * token_bytes);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t t = tokens[i];
    if (t < 0 || (token_bytes == 2 && t > 65535) || (vocab_size > 0 && t >= vocab_size))
      return invalid_argument("token file: id " + S(t) + " at position " + S(static_cast<int64_t>(i)) +
                              (token_bytes == 2 && t > 65535 ? " does not fit uint16 (use 4-byte tokens)"
                                                             : ", expected [0, vocab_size=" + S(vocab_size) + ")"));
    put_le(buf, static_cast<uint64_t>(t), token_bytes);
  }
  return io::write_file_atomic(path, buf);
}

Expected<std::unique_ptr<TokenSource>> open_token_file(const std::string& path, bool validate_ids) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return not_found("token file: " + path + " does not exist");
    return io_error("token file: cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat sb {};
  if (fstat(fd, &sb) != 0) {
    const int e = errno;
    ::close(fd);
    return io_error("token file: cannot stat " + path + ": " + std::strerror(e));
  }
  const size_t len = static_cast<size_t>(sb.st_size);
  if (len < kHeader) {
    ::close(fd);
    return corrupt("token file: " + path + " has " + S(static_cast<int64_t>(len)) + " bytes, expected a 32-byte header");
  }
  void* base = mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) return io_error("token file: cannot map " + path + ": " + std::strerror(errno));
  const uint8_t* p = static_cast<const uint8_t*>(base);
  auto fail = [&](std::string m) -> Expected<std::unique_ptr<TokenSource>> {
    munmap(base, len);
    return corrupt("token file: " + path + ": " + m);
  };
  if (std::memcmp(p, kMagic, 8) != 0) return fail("bad magic (expected \"BNATOK\\0\\1\")");
  const uint64_t bytes = get_le(p + 8, 4), n = get_le(p + 16, 8), vocab = get_le(p + 24, 8);
  if (bytes != 2 && bytes != 4) return fail("token_bytes=" + S(static_cast<int64_t>(bytes)) + ", expected 2 or 4");
  if (n > (len - kHeader) / bytes || kHeader + n * bytes != len)
    return fail("header says " + std::to_string(n) + " tokens of " + S(static_cast<int64_t>(bytes)) +
                " bytes but the file has " + S(static_cast<int64_t>(len - kHeader)) + " data bytes");
  if (vocab > static_cast<uint64_t>(INT32_MAX)) return fail("vocab_size=" + std::to_string(vocab) + " too large");
  auto src = std::make_unique<MappedTokens>(base, len, static_cast<int>(bytes), static_cast<int64_t>(n),
                                            static_cast<int64_t>(vocab));
  if (validate_ids)
    for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
      const int64_t t = src->at(i);
      if (t < 0 || (vocab > 0 && t >= static_cast<int64_t>(vocab)))
        return corrupt("token file: " + path + ": id " + S(t) + " at position " + S(i) + ", expected [0, vocab_size=" +
                       S(static_cast<int64_t>(vocab)) + ")");
    }
  return std::unique_ptr<TokenSource>(std::move(src));
}

Expected<Split> split_tokens(std::span<const int32_t> tokens, double val_fraction) {
  if (!(val_fraction > 0.0 && val_fraction < 1.0))
    return invalid_argument("data split: val_fraction=" + std::to_string(val_fraction) + ", expected (0, 1)");
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_val = static_cast<int64_t>(static_cast<double>(n) * val_fraction);
  if (n_val < 1 || n - n_val < 1)
    return invalid_argument("data split: " + S(n) + " tokens give an empty train or validation part (val_fraction=" +
                            std::to_string(val_fraction) + ")");
  Split s;
  s.train.assign(tokens.begin(), tokens.end() - n_val);
  s.val.assign(tokens.end() - n_val, tokens.end());
  return s;
}

Status lm_batch(const TokenSource& src, int64_t B, int64_t T, uint64_t seed, uint64_t index, Batch& out) {
  if (B < 1 || T < 1) return invalid_argument("lm batch: B=" + S(B) + " T=" + S(T) + ", expected >= 1");
  const int64_t N = src.size();
  if (N < T + 1)
    return invalid_argument("lm batch: dataset has " + S(N) + " tokens, expected at least T + 1 = " + S(T + 1));
  Rng rng(mix_seed(seed, index));
  out.B = B; out.T = T;
  out.x.resize(static_cast<size_t>(B * T));
  out.y.resize(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(N - T)));  // [0, N-T-1]
    for (int64_t t = 0; t < T; ++t) {
      out.x[b * T + t] = src.at(s + t);
      out.y[b * T + t] = src.at(s + t + 1);
    }
  }
  return Status::ok();
}

}  // namespace bna::data
