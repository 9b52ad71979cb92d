// Command-line flags shared by the GPT training benchmarks (gpt_train.cpp on the CPU,
// gpt_train_cuda.cpp on the GPU). Header-only; bench programs only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

struct GptBenchFlags {
  int64_t layers = 6, d_model = 384, heads = 6, vocab = 256, T = 1024, batch = 1, steps = 3;
  int64_t accum = 1;           // GPU only: micro-batches of `batch` per optimizer step
  double peak_tflops = 989.4;  // GPU only: H100 SXM dense bf16
  std::string attn = "dense";
  bool json = false;
};

// Parses argv into f (defaults as set by the caller). gpu enables --vocab, --peak and --accum. Returns 0, or 2
// after printing the error for an unknown flag or a flag without its value.
inline int parse_gpt_bench_flags(int argc, char** argv, GptBenchFlags& f, bool gpu) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") { f.json = true; continue; }
    if (i + 1 >= argc) { std::fprintf(stderr, "error: %s needs a value (or is unknown)\n", a.c_str()); return 2; }
    const std::string v = argv[++i];
    if (a == "--layers") f.layers = std::stoll(v);
    else if (a == "--d-model") f.d_model = std::stoll(v);
    else if (a == "--heads") f.heads = std::stoll(v);
    else if (a == "--T") f.T = std::stoll(v);
    else if (a == "--batch") f.batch = std::stoll(v);
    else if (a == "--steps") f.steps = std::stoll(v);
    else if (a == "--attn") f.attn = v;
    else if (gpu && a == "--vocab") f.vocab = std::stoll(v);
    else if (gpu && a == "--peak") f.peak_tflops = std::stod(v);
    else if (gpu && a == "--accum") f.accum = std::stoll(v);
    else { std::fprintf(stderr, "error: unknown flag %s\n", a.c_str()); return 2; }
  }
  return 0;
}
