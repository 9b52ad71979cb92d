// bna demo --train: the hook between demo.cpp and demo_train.cpp. The training demo has its own
// flags (prefixed where they would clash with the attention demo's, e.g. --train-T next to --T).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace bna::cli {

struct DemoTrainFlags {
  std::string task = "passkey";  // passkey | recall
  int64_t steps = 300;
  int64_t T = 128;               // --train-T, the model's seq_len
  int64_t window = 0;            // --train-window W; 0: T / 16. Landmark stride S = W.
  int64_t layers = 3;
  int64_t batch = 16;
  uint64_t seed = 1337;
  bool json = false;
};

// Adds --task, --steps, --train-T, --train-window, --train-layers, --train-batch, --train-seed, --json to `demo`;
// each needs `train_flag` (--train).
void add_demo_train_flags(CLI::App* demo, CLI::Option* train_flag, DemoTrainFlags& f);
// Trains the four variants and prints the table (or the JSON document). Returns the exit code
// (also recorded in exit_code()): 2 for bad flag values, 1 for a failed run, 0 otherwise.
int run_demo_train(const DemoTrainFlags& f);

}  // namespace bna::cli
