// libFuzzer target for the safetensors header parser: every input goes through File::parse, which
// must return an error or a File whose tensors all lie inside the input (checked by touching every
// byte and converting float tensors), never crash or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "bna/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = bna::st::File::parse(data, size);
  if (!f) return 0;
  volatile uint8_t sink = 0;
  for (const auto& t : f->tensors()) {
    const uint8_t* p = static_cast<const uint8_t*>(t.data);
    for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ p[i];
    if (t.nbytes <= (1u << 20)) {
      std::vector<float> out(static_cast<size_t>(t.numel()));
      (void)bna::st::read_f32(t, out.data());
    }
  }
  (void)f->find("a");
  (void)f->metadata().size();
  return 0;
}
