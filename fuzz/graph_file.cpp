// libFuzzer target for the file parsers: every input goes through parse_graph and parse_npy, which
// must return an error (never crash, hang, or allocate beyond the input's declared size).
// A parsed graph is also run through graph::validate, which must likewise never crash.
#include <cstddef>
#include <cstdint>

#include "bna/graph.hpp"
#include "bna/graph_io.hpp"
#include "bna/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto g = bna::io::parse_graph(data, size);
  if (g) (void)bna::graph::validate(*g);
  auto a = bna::io::parse_npy(data, size);
  if (a) (void)a->numel();
  return 0;
}
