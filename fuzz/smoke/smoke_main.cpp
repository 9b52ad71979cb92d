// Fuzz smoke driver for builds without libFuzzer (gcc, CI): replays every file of the corpus
// directories given on the command line through LLVMFuzzerTestOneInput, then a fixed number of
// deterministic mutations of them (byte flips, interesting bytes, truncations, duplicated and
// inserted chunks). A crash, abort or hang (ctest TIMEOUT) fails the test; nothing else is checked
// here, the targets' own aborts carry their invariants. Usage: smoke DIR... [--mutations N] [--seed S]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

struct XorShift {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
};

void mutate(std::vector<uint8_t>& b, XorShift& r) {
  static const uint8_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, '(', ')', '"', '\\', ';', '-', '9', '{', '}', '[', ']', ':', ',', '\n'};
  const int ops = 1 + static_cast<int>(r.below(4));
  for (int o = 0; o < ops; ++o) {
    switch (r.below(6)) {
      case 0: if (!b.empty()) b[r.below(b.size())] ^= static_cast<uint8_t>(1u << r.below(8)); break;
      case 1: if (!b.empty()) b[r.below(b.size())] = kInteresting[r.below(sizeof(kInteresting))]; break;
      case 2: b.resize(r.below(b.size() + 1)); break;
      case 3: {
        if (b.empty()) break;
        const size_t at = r.below(b.size()), len = 1 + r.below(std::min<size_t>(64, b.size() - at));
        std::vector<uint8_t> chunk(b.begin() + at, b.begin() + at + len);
        b.insert(b.begin() + r.below(b.size() + 1), chunk.begin(), chunk.end());
        break;
      }
      case 4: {
        const size_t len = 1 + r.below(16), at = r.below(b.size() + 1);
        std::vector<uint8_t> junk(len);
        for (auto& x : junk) x = static_cast<uint8_t>(r.next());
        b.insert(b.begin() + at, junk.begin(), junk.end());
        break;
      }
      default:
        if (b.size() >= 8) {  // overwrite a little-endian word with a huge or negative value
          const size_t at = r.below(b.size() - 7);
          const uint64_t v = r.below(2) ? ~uint64_t(0) >> r.below(64) : uint64_t(1) << r.below(64);
          for (int k = 0; k < 8; ++k) b[at + k] = static_cast<uint8_t>(v >> (8 * k));
        }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::vector<uint8_t>> corpus;
  long mutations = 500;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--mutations" && a + 1 < argc) { mutations = std::strtol(argv[++a], nullptr, 10); continue; }
    if (arg == "--seed" && a + 1 < argc) { seed = std::strtoull(argv[++a], nullptr, 10) | 1; continue; }
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(arg, ec)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (ec) { std::fprintf(stderr, "smoke: cannot read corpus dir %s: %s\n", arg.c_str(), ec.message().c_str()); return 2; }
  }
  if (corpus.empty()) { std::fprintf(stderr, "smoke: empty corpus\n"); return 2; }
  LLVMFuzzerTestOneInput(nullptr, 0);
  for (const auto& c : corpus) LLVMFuzzerTestOneInput(c.data(), c.size());
  XorShift r{seed};
  for (long m = 0; m < mutations; ++m) {
    std::vector<uint8_t> b = corpus[r.below(corpus.size())];
    mutate(b, r);
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }
  std::printf("smoke: %zu corpus inputs, %ld mutations, no crash\n", corpus.size(), mutations);
  return 0;
}
