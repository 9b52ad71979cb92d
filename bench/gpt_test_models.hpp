// The models of tests/model_cuda/cuda_gpt_test.cpp, for the CPU programs that calibrate its bounds
// (gpt_step_noise_calibration.cpp, gpt_bf16_weight_sensitivity.cpp). Keep in step with the test:
// kTiny = tiny(), kContiguousPaths = tiny_contiguous_paths(), kWide = the vocabulary-97 / C=384 case.
#pragma once

#include "bna/model.hpp"

enum class TestModel { kTiny, kContiguousPaths, kWide };

inline bna::model::GptConfig model_cuda_test_model(TestModel which) {
  bna::model::GptConfig c;
  const bool wide = which == TestModel::kWide;
  c.vocab_size = wide ? 97 : 96;
  c.seq_len = 101;
  c.n_layers = 2;
  c.n_heads = wide ? 6 : 2;
  c.n_kv_heads = wide ? 3 : 1;
  c.d_model = wide ? 384 : 128;
  c.seed = 3;
  const bool contiguous = which == TestModel::kContiguousPaths;
  c.attn.push_back(*bna::model::parse_attn_spec(contiguous ? "block:bs=16,rule=xor,p=1,local=1,sink=1" : "dense"));
  c.attn.push_back(*bna::model::parse_attn_spec(contiguous ? "graph:w=16,s=16,c=1,strategy=random,path=gather"
                                                           : "graph:w=16,s=16,c=1,strategy=random"));
  return c;
}
