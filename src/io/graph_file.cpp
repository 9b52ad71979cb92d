// The .bnagraph container (layout in include/bna/graph_io.hpp and docs/formats.md) and NumPy export.
// One reader serves both parse_graph (memory) and load_graph (file): it pulls bytes from a Source,
// checks every header field against the total size before allocating anything (so a forged H*T*D can
// neither overflow nor trigger a huge allocation), reads the arrays straight into the GraphAbi, and
// verifies the CRC-32C before it trusts the JSON. load_graph therefore needs no second copy of a
// multi-GB file. The JSON block is space-padded so the arrays start at a multiple of 64 bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#include "bna/graph_io.hpp"
#include "bna/io.hpp"
#include "bna/npy.hpp"

namespace bna::io {
namespace {

using json = nlohmann::json;
constexpr char kMagic[8] = {'B', 'N', 'A', 'G', 'R', 'A', 'P', 'H'};
constexpr size_t kHeaderBytes = 48;

// ---- CRC-32C --------------------------------------------------------------------------------------
struct Crc32cTable {
  uint32_t t[256];
  Crc32cTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
      t[i] = c;
    }
  }
};

uint32_t crc32c_raw(uint32_t c, const uint8_t* p, size_t n) {
#if defined(__SSE4_2__)
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (n--) c = _mm_crc32_u8(c, *p++);
  return c;
#else
  static const Crc32cTable tab;
  while (n--) c = tab.t[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
#endif
}

void put_u32(std::string& s, uint32_t v) {
  for (int b = 0; b < 4; ++b) s += static_cast<char>((v >> (8 * b)) & 0xff);
}
void put_u64(std::string& s, uint64_t v) {
  for (int b = 0; b < 8; ++b) s += static_cast<char>((v >> (8 * b)) & 0xff);
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int b = 7; b >= 0; --b) v = (v << 8) | p[b];
  return v;
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int b = 3; b >= 0; --b) v = (v << 8) | p[b];
  return v;
}

json meta_json(const graph::GraphMeta& m) {
  json j;
  j["strategy"] = m.strategy;
  j["window"] = m.window;
  j["landmark_stride"] = m.landmark_stride;
  j["num_cycles"] = m.num_cycles;
  j["seed"] = m.seed;
  j["include_self"] = m.include_self;
  j["cycle_perms"] = m.cycle_perms;
  return j;
}

Status check_shape(const graph::GraphAbi& g) {
  if (g.H < 1 || g.T < 1 || g.D < 1 || g.T > std::numeric_limits<int32_t>::max())
    return invalid_argument("graph_io: H=" + std::to_string(g.H) + " T=" + std::to_string(g.T) + " D=" +
                            std::to_string(g.D) + ", expected H, T, D >= 1 and T <= 2147483647");
  const uint64_t n = static_cast<uint64_t>(g.H) * static_cast<uint64_t>(g.T) * static_cast<uint64_t>(g.D);
  if (g.neigh_idx.size() != n || g.edge_type.size() != n)
    return invalid_argument("graph_io: neigh_idx has " + std::to_string(g.neigh_idx.size()) + " and edge_type " +
                            std::to_string(g.edge_type.size()) + " entries, expected H*T*D=" + std::to_string(n));
  return Status::ok();
}

// ---- reading -------------------------------------------------------------------------------------
class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly n bytes (the caller has checked they exist) and folds them into the CRC.
  Status read(void* dst, size_t n) {
    BNA_RETURN_IF_ERROR(read_raw(dst, n));
    crc_ = crc32c_raw(crc_, static_cast<const uint8_t*>(dst), n);
    return Status::ok();
  }
  Status read_no_crc(void* dst, size_t n) { return read_raw(dst, n); }
  uint32_t crc() const { return ~crc_; }

 protected:
  virtual Status read_raw(void* dst, size_t n) = 0;

 private:
  uint32_t crc_ = 0xFFFFFFFFu;
};

class MemorySource final : public Source {
 public:
  MemorySource(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint64_t size() const override { return n_; }

 protected:
  Status read_raw(void* dst, size_t n) override {
    if (n > n_ - off_) return corrupt("graph_io: truncated");
    if (n) std::memcpy(dst, p_ + off_, n);
    off_ += n;
    return Status::ok();
  }

 private:
  const uint8_t* p_;
  size_t n_, off_ = 0;
};

class FileSource final : public Source {
 public:
  ~FileSource() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      if (err == ENOENT) return not_found("graph_io: no such file '" + path + "'");
      return io_error("graph_io: cannot open '" + path + "': " + std::strerror(err));
    }
    struct stat st{};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return io_error("graph_io: '" + path + "' is not a regular file");
    size_ = static_cast<uint64_t>(st.st_size);
    return Status::ok();
  }
  uint64_t size() const override { return size_; }

 protected:
  Status read_raw(void* dst, size_t n) override {
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t k = ::read(fd_, p, n < (size_t{1} << 30) ? n : (size_t{1} << 30));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return io_error("graph_io: read failed for '" + path_ + "': " + std::strerror(errno));
      if (k == 0) return corrupt("graph_io: '" + path_ + "' ended early (file changed while reading?)");
      p += k;
      n -= static_cast<size_t>(k);
    }
    return Status::ok();
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

Status bad(const std::string& m) { return corrupt("graph_io: " + m); }

Status parse_meta(const json& j, graph::GraphAbi& g) {
  if (!j.is_object()) return bad("metadata is not a JSON object");
  auto need = [&](const char* key, bool ok, const char* what) -> Status {
    if (!j.contains(key)) return bad(std::string("metadata lacks '") + key + "'");
    if (!ok) return bad(std::string("metadata '") + key + "' is " + j.at(key).dump().substr(0, 40) + ", expected " + what);
    return Status::ok();
  };
  BNA_RETURN_IF_ERROR(need("strategy", j.contains("strategy") && j["strategy"].is_string(), "a string"));
  BNA_RETURN_IF_ERROR(need("window", j.contains("window") && j["window"].is_number_integer() &&
                                         j["window"].get<int64_t>() >= 0, "an integer >= 0"));
  BNA_RETURN_IF_ERROR(need("landmark_stride", j.contains("landmark_stride") && j["landmark_stride"].is_number_integer() &&
                                                  j["landmark_stride"].get<int64_t>() >= 0, "an integer >= 0"));
  BNA_RETURN_IF_ERROR(need("num_cycles", j.contains("num_cycles") && j["num_cycles"].is_number_integer() &&
                                             j["num_cycles"].get<int64_t>() >= 0 &&
                                             j["num_cycles"].get<int64_t>() <= std::numeric_limits<int>::max(),
                           "an integer in [0, 2^31)"));
  BNA_RETURN_IF_ERROR(need("seed", j.contains("seed") && j["seed"].is_number_unsigned(), "an unsigned integer"));
  BNA_RETURN_IF_ERROR(need("include_self", j.contains("include_self") && j["include_self"].is_boolean(), "a boolean"));
  BNA_RETURN_IF_ERROR(need("cycle_perms", j.contains("cycle_perms") && j["cycle_perms"].is_array(), "an array"));
  graph::GraphMeta& m = g.meta;
  m.strategy = j["strategy"].get<std::string>();
  m.window = j["window"].get<int64_t>();
  m.landmark_stride = j["landmark_stride"].get<int64_t>();
  m.num_cycles = j["num_cycles"].get<int>();
  m.seed = j["seed"].get<uint64_t>();
  m.include_self = j["include_self"].get<bool>();
  const json& cp = j["cycle_perms"];
  if (!cp.empty() && static_cast<int64_t>(cp.size()) != g.H)
    return bad("metadata cycle_perms has " + std::to_string(cp.size()) + " heads, expected 0 or H=" +
               std::to_string(g.H));
  m.cycle_perms.assign(cp.size(), {});
  std::vector<uint8_t> seen(cp.empty() ? 0 : static_cast<size_t>(g.T));
  for (size_t h = 0; h < cp.size(); ++h) {
    if (!cp[h].is_array()) return bad("metadata cycle_perms[" + std::to_string(h) + "] is not an array");
    m.cycle_perms[h].resize(cp[h].size());
    for (size_t c = 0; c < cp[h].size(); ++c) {
      const json& pj = cp[h][c];
      const std::string at = "metadata cycle_perms[" + std::to_string(h) + "][" + std::to_string(c) + "]";
      if (!pj.is_array() || static_cast<int64_t>(pj.size()) != g.T)
        return bad(at + " is not an array of T=" + std::to_string(g.T) + " nodes");
      std::fill(seen.begin(), seen.end(), 0);
      auto& perm = m.cycle_perms[h][c];
      perm.resize(pj.size());
      for (size_t p = 0; p < pj.size(); ++p) {
        if (!pj[p].is_number_integer()) return bad(at + "[" + std::to_string(p) + "] is not an integer");
        const int64_t v = pj[p].get<int64_t>();
        if (v < 0 || v >= g.T || seen[v])
          return bad(at + "[" + std::to_string(p) + "]=" + std::to_string(v) +
                     ", expected a permutation of 0.." + std::to_string(g.T - 1));
        seen[v] = 1;
        perm[p] = static_cast<int32_t>(v);
      }
    }
  }
  return Status::ok();
}

Expected<graph::GraphAbi> read_graph(Source& src) {
  const uint64_t n = src.size();
  if (n < sizeof(kMagic)) return bad("file has " + std::to_string(n) + " bytes, expected at least 52");
  uint8_t hdr[kHeaderBytes];
  BNA_RETURN_IF_ERROR(src.read(hdr, sizeof(kMagic)));
  if (std::memcmp(hdr, kMagic, sizeof(kMagic)) != 0) return bad("bad magic, expected \"BNAGRAPH\"");
  if (n < kHeaderBytes + 4) return bad("file has " + std::to_string(n) + " bytes, expected at least 52");
  BNA_RETURN_IF_ERROR(src.read(hdr + 8, kHeaderBytes - 8));
  const uint32_t version = get_u32(hdr + 8), flags = get_u32(hdr + 12);
  if (version != kGraphFileVersion)
    return unimplemented("graph_io: format version " + std::to_string(version) + ", expected " +
                         std::to_string(kGraphFileVersion));
  if (flags != 0) return unimplemented("graph_io: flags " + std::to_string(flags) + ", expected 0");
  const int64_t H = static_cast<int64_t>(get_u64(hdr + 16)), T = static_cast<int64_t>(get_u64(hdr + 24)),
                D = static_cast<int64_t>(get_u64(hdr + 32));
  const uint64_t meta_len = get_u64(hdr + 40);
  if (H < 1 || T < 1 || D < 1 || T > std::numeric_limits<int32_t>::max())
    return bad("H=" + std::to_string(H) + " T=" + std::to_string(T) + " D=" + std::to_string(D) +
               ", expected H, T, D >= 1 and T <= 2147483647");
  const uint64_t avail = n - kHeaderBytes - 4;  // bytes for metadata + arrays
  // H*T*D*5 must fit in what is left; checked by division so nothing overflows.
  const uint64_t uH = static_cast<uint64_t>(H), uT = static_cast<uint64_t>(T), uD = static_cast<uint64_t>(D);
  if (uH > avail / 5 || uT > avail / 5 / uH || uD > avail / 5 / uH / uT)
    return bad("H=" + std::to_string(H) + " T=" + std::to_string(T) + " D=" + std::to_string(D) + " needs more than the " +
               std::to_string(avail) + " bytes the file holds");
  const uint64_t cells = uH * uT * uD;
  if (meta_len != avail - cells * 5)
    return bad("metadata length " + std::to_string(meta_len) + ", expected " + std::to_string(avail - cells * 5) +
               " (file size " + std::to_string(n) + " minus header, arrays and checksum)");
  graph::GraphAbi g;
  std::string meta;
  try {
    meta.resize(meta_len);
    g.neigh_idx.resize(cells);
    g.edge_type.resize(cells);
  } catch (const std::exception&) {
    return out_of_range("graph_io: cannot allocate a graph of H=" + std::to_string(H) + " T=" + std::to_string(T) +
                        " D=" + std::to_string(D));
  }
  g.H = H;
  g.T = T;
  g.D = D;
  BNA_RETURN_IF_ERROR(src.read(meta.data(), meta.size()));
  BNA_RETURN_IF_ERROR(src.read(g.neigh_idx.data(), cells * 4));
  BNA_RETURN_IF_ERROR(src.read(g.edge_type.data(), cells));
  uint8_t tail[4];
  BNA_RETURN_IF_ERROR(src.read_no_crc(tail, 4));
  const uint32_t want = get_u32(tail), got = src.crc();
#if defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
  // Fuzz builds only: a mutated file almost never has a matching CRC, which would hide the JSON and
  // metadata parsers from the fuzzer.
  const bool crc_ok = true;
#else
  const bool crc_ok = want == got;
#endif
  if (!crc_ok) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "checksum mismatch: file says CRC-32C %08x, contents give %08x", want, got);
    return bad(buf);
  }
  if constexpr (std::endian::native != std::endian::little) {
    for (int32_t& v : g.neigh_idx) v = static_cast<int32_t>(get_u32(reinterpret_cast<const uint8_t*>(&v)));
  }
  json j = json::parse(meta.begin(), meta.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("metadata is not valid JSON");
  try {
    BNA_RETURN_IF_ERROR(parse_meta(j, g));
  } catch (const std::exception& e) {
    return bad(std::string("metadata: ") + e.what());
  }
  return g;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  return ~crc32c_raw(~crc, static_cast<const uint8_t*>(data), n);
}

Status save_graph(const std::string& path, const graph::GraphAbi& g) {
  BNA_RETURN_IF_ERROR(check_shape(g));
  std::string meta;
  try {
    meta = meta_json(g.meta).dump();
  } catch (const std::exception& e) {
    return invalid_argument(std::string("graph_io: metadata cannot be encoded: ") + e.what());
  }
  meta.append((64 - (kHeaderBytes + meta.size()) % 64) % 64, ' ');
  std::string head(kMagic, sizeof(kMagic));
  put_u32(head, kGraphFileVersion);
  put_u32(head, 0);
  put_u64(head, static_cast<uint64_t>(g.H));
  put_u64(head, static_cast<uint64_t>(g.T));
  put_u64(head, static_cast<uint64_t>(g.D));
  put_u64(head, meta.size());
  BNA_ASSIGN_OR_RETURN(AtomicWriter w, AtomicWriter::open(path));
  uint32_t crc = 0;
  auto put = [&](const void* p, size_t n) {
    crc = crc32c(p, n, crc);
    return w.write(p, n);
  };
  BNA_RETURN_IF_ERROR(put(head.data(), head.size()));
  BNA_RETURN_IF_ERROR(put(meta.data(), meta.size()));
  static_assert(std::endian::native == std::endian::little, "graph files are written little-endian");
  BNA_RETURN_IF_ERROR(put(g.neigh_idx.data(), g.neigh_idx.size() * 4));
  BNA_RETURN_IF_ERROR(put(g.edge_type.data(), g.edge_type.size()));
  std::string tail;
  put_u32(tail, crc);
  BNA_RETURN_IF_ERROR(w.write(tail.data(), tail.size()));
  return w.commit();
}

Expected<graph::GraphAbi> parse_graph(const uint8_t* data, size_t n) {
  if (data == nullptr && n > 0) return invalid_argument("graph_io: null buffer");
  MemorySource src(data, n);
  return read_graph(src);
}

Expected<graph::GraphAbi> load_graph(const std::string& path) {
  FileSource src;
  BNA_RETURN_IF_ERROR(src.open(path));
  auto g = read_graph(src);
  if (!g) return Status(g.status().code(), g.status().message() + " (in '" + path + "')");
  return g;
}

Status export_graph_npy(const std::string& dir, const graph::GraphAbi& g) {
  BNA_RETURN_IF_ERROR(check_shape(g));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error("graph_io: cannot create directory '" + dir + "': " + ec.message());
  const std::vector<int64_t> shape{g.H, g.T, g.D};
  BNA_RETURN_IF_ERROR(write_npy(dir + "/neigh_idx.npy", NpyType::kI32, shape, g.neigh_idx.data()));
  BNA_RETURN_IF_ERROR(write_npy(dir + "/edge_type.npy", NpyType::kU8, shape, g.edge_type.data()));
  std::string text;
  try {
    json j = meta_json(g.meta);
    j["H"] = g.H;
    j["T"] = g.T;
    j["D"] = g.D;
    j["edge_types"] = {"pad", "cycle", "window", "landmark", "rewire"};
    text = j.dump(1) + "\n";
  } catch (const std::exception& e) {
    return invalid_argument(std::string("graph_io: metadata cannot be encoded: ") + e.what());
  }
  return write_file_atomic(dir + "/meta.json", text);
}

}  // namespace bna::io
