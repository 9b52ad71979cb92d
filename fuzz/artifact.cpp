// Fuzz target for the artifact loader (spec::load_artifact, verify_stored_abi). On first use it
// compiles configs/graph_specs/default.wf at T=16, H=2 with the ABI arrays (--abi) into a scratch
// directory. Each input then replaces one file of a fresh copy of that artifact: the first byte picks
// the file (meta.json or one of the .npy arrays), the rest is its new content. Loading and verifying
// must return an error or a valid artifact, never crash, hang or allocate beyond what the files
// declare; a loaded artifact must materialize to rows of the width it records.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "bna/spec.hpp"

#ifndef BNA_SOURCE_DIR
#define BNA_SOURCE_DIR "."
#endif

namespace {
namespace fs = std::filesystem;

const char* const kFiles[] = {"meta.json", "neigh_idx.npy", "edge_type.npy", "perm.npy", "inv_perm.npy", "window_idx.npy"};

struct Scratch {
  std::string base, work;
  bool ok = false;
  Scratch() {
    base = (fs::temp_directory_path() / ("bna_fuzz_artifact_" + std::to_string(::getpid()))).string();
    bna::spec::CompileOptions opt;
    opt.T = 16;
    opt.H = 2;
    opt.out_root = base;
    opt.materialize_abi = true;
    auto r = bna::spec::compile_file(std::string(BNA_SOURCE_DIR) + "/configs/graph_specs/default.wf", opt);
    if (!r) return;
    work = base + "/work/" + fs::path(r->artifact_dir).filename().string();
    ok = true;
    src = r->artifact_dir;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  std::string src;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Scratch s;
  if (!s.ok) std::abort();  // the seed artifact must compile
  std::error_code ec;
  fs::remove_all(s.work, ec);
  fs::create_directories(fs::path(s.work).parent_path(), ec);
  fs::copy(s.src, s.work, fs::copy_options::recursive, ec);
  if (ec) std::abort();
  if (size > 0) {
    const char* name = kFiles[data[0] % (sizeof(kFiles) / sizeof(kFiles[0]))];
    std::ofstream out(s.work + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  auto a = bna::spec::load_artifact(s.work, 16, 2);
  if (a) {
    if (a->abi_stored) (void)bna::spec::verify_stored_abi(*a);
    auto g = bna::spec::materialize_abi(*a);
    if (!g || g->D != a->D) std::abort();
  }
  return 0;
}
