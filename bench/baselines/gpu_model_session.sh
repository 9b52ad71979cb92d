#!/usr/bin/env bash
# One device session for the CUDA decoder (hf::CudaModel): build (Release, sm_90a), the GPU tests of
# the model and of the attention kernels, then `bna bench model --backend cuda`; logs and JSON go to
# $OUT (default ./gpu-out). Steps: STEPS="build test bench" (default all three).
# Usage: STEPS="build test" BUILD=../build-dev bash bench/baselines/gpu_model_session.sh
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
STEPS=${STEPS:-"build test bench"}
BUILD=${BUILD:-build-dev}
MODEL_ARGS=${MODEL_ARGS:-"--preset qwen-1b-like --context 4096 --context 16384 --context 65536 --context 131072 --decode-tokens 32"}
has() { [[ " $STEPS " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
if has build; then
  t0=$(date +%s)
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBNA_CUDA=ON > "$OUT/configure.log" 2>&1 || { tail -20 "$OUT/configure.log"; exit 1; }
  cmake --build "$BUILD" -j 16 --target bna_cli bna_test_hf_cuda bna_test_attention_cuda > "$OUT/build.log" 2>&1 \
    || { grep -E "error|Error" "$OUT/build.log" | head -30; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
fi
if has test; then
  t0=$(date +%s)
  "$BUILD/tests/bna_test_hf_cuda" --gtest_brief=1 > "$OUT/tests_hf_cuda.log" 2>&1
  echo "hf_cuda tests rc=$?"; grep -E "FAILED|Failure|error|Expected|Which is|rms error|max error" "$OUT/tests_hf_cuda.log" | head -40; tail -3 "$OUT/tests_hf_cuda.log"
  "$BUILD/tests/bna_test_attention_cuda" --gtest_brief=1 ${TEST_FILTER:+--gtest_filter=$TEST_FILTER} > "$OUT/tests_attention_cuda.log" 2>&1
  echo "attention_cuda tests rc=$?"; grep -E "FAILED|Failure" "$OUT/tests_attention_cuda.log" | head -20; tail -3 "$OUT/tests_attention_cuda.log"
  echo "tests: $(( $(date +%s) - t0 )) s"
fi
if has bench; then
  BNA_COMMIT=${COMMIT:-unknown} "$BUILD/bin/bna" bench model --backend cuda $MODEL_ARGS --out "$OUT/model.json" 2>&1 | tee "$OUT/model.log"
fi
