#!/usr/bin/env bash
# One device session: build (Release, sm_90a), GPU tests, optional compute-sanitizer pass, our
# attention benchmark and the PyTorch baselines, the GPU models (hf::CudaModel, model::CudaGpt: their
# tests, `bna bench model --backend cuda`, bna_gpt_train_cuda), all on the same GPU; logs and JSON go
# to $OUT (default ./gpu-out). Steps: STEPS="build test sanitize bench torch demo model".
# Usage: STEPS="build test" bash bench/baselines/gpu_session.sh
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
STEPS=${STEPS:-"build test bench torch"}
BUILD=${BUILD:-build-dev}
BENCH_ARGS=${BENCH_ARGS:-}
TORCH_ARGS=${TORCH_ARGS:-"--bwd"}
MODEL_ARGS=${MODEL_ARGS:-"--preset qwen-1b-like --context 4096 --context 16384 --context 65536 --context 131072 --decode-tokens 32 --attention dense --attention butterfly --attention compressed"}
TARGETS=${TARGETS:-"bna_test_attention_cuda bna_attention_cuda bna_cli bna_test_hf_cuda bna_test_model_cuda bna_gpt_train_cuda"}
has() { [[ " $STEPS " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
if has build; then
  t0=$(date +%s)
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBNA_CUDA=ON > "$OUT/configure.log" 2>&1 || { tail -20 "$OUT/configure.log"; exit 1; }
  cmake --build "$BUILD" -j 16 --target $TARGETS > "$OUT/build.log" 2>&1 \
    || { grep -E "error|Error" "$OUT/build.log" | head -30; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
fi
if has test; then
  "$BUILD/tests/bna_test_attention_cuda" --gtest_brief=1 ${TEST_FILTER:+--gtest_filter=$TEST_FILTER} > "$OUT/tests.log" 2>&1
  echo "tests rc=$?"; grep -E "^\[  (PASSED|FAILED|SKIPPED)|FAILED|Failure|error" "$OUT/tests.log" | head -40; tail -3 "$OUT/tests.log"
fi
if has sanitize; then
  compute-sanitizer --tool memcheck --error-exitcode 9 "$BUILD/tests/bna_test_attention_cuda" --gtest_brief=1 \
    --gtest_filter="${SAN_FILTER:-*T63_*:*T257_*dh64*:*Tk100_*:*Dispatch*}" > "$OUT/sanitizer.log" 2>&1
  echo "sanitizer rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/sanitizer.log" | head -5
fi
if has bench; then
  "$BUILD/bin/bna_attention_cuda" --json "$OUT/ours.json" --commit "${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}" $BENCH_ARGS 2>&1 | tee "$OUT/ours.log"
fi
if has torch; then
  PYTHONUNBUFFERED=1 python3 bench/baselines/torch_attention.py --json "$OUT/torch.json" $TORCH_ARGS 2>&1 | tee "$OUT/torch.log" | grep -v Warning
fi
if has demo; then
  if [ -x "$BUILD/bin/bna" ]; then "$BUILD/bin/bna" demo 2>&1 | tee "$OUT/demo.log" | tail -30; else echo "no bna binary"; fi
fi
if has model; then
  for t in hf_cuda model_cuda; do
    "$BUILD/tests/bna_test_$t" --gtest_brief=1 > "$OUT/tests_$t.log" 2>&1
    echo "$t tests rc=$?"; grep -E "FAILED|Failure" "$OUT/tests_$t.log" | head -20; tail -2 "$OUT/tests_$t.log"
  done
  BNA_COMMIT=${COMMIT:-unknown} "$BUILD/bin/bna" bench model --backend cuda $MODEL_ARGS --out "$OUT/model.json" 2>&1 | tee "$OUT/model.log"
  for a in "--T 1024 --batch 8" "--T 1024 --batch 16" "--T 8192 --batch 1" "--T 8192 --batch 1 --attn graph:w=64,s=64,c=1"; do
    "$BUILD/bin/bna_gpt_train_cuda" $a --steps 8 --json | tee -a "$OUT/gpt_train.jsonl"
  done
fi
