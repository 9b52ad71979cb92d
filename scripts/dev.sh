#!/usr/bin/env bash
# Butterfly developer entry point: installs what is missing, builds, and runs.
#   scripts/dev.sh demo [bna demo flags...]   set up, build (Release), run the main job `bna demo`
#   scripts/dev.sh test                       set up, build (Release), run every CPU test (ctest -L cpu)
#   scripts/dev.sh deps                       only install the Debian packages
# The build uses CUDA when nvcc is found (PATH or /usr/local/cuda/bin); BNA_CUDA=OFF turns it off.
set -euo pipefail
cd "$(dirname "$0")/.."

DEPS=(build-essential cmake ninja-build git pkg-config libgtest-dev libgmock-dev libbenchmark-dev
      nlohmann-json3-dev libcli11-dev libopenblas-dev libeigen3-dev libssl-dev)

install_deps() {
  local missing=()
  for p in "${DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "dev.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}

configure_build() {
  if [ -z "${BNA_CUDA:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
  fi
  local jobs
  jobs=$(nproc)
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBNA_CUDA="${BNA_CUDA:-ON}" >/dev/null
  cmake --build build/release -j "$jobs"
}

cmd=${1:-test}
shift || true
case "$cmd" in
  deps) install_deps ;;
  demo) install_deps; configure_build; ./build/release/bin/bna demo "$@" ;;
  test)
    install_deps; configure_build
    # ctest runs test binaries side by side; idle OpenMP threads must sleep, not spin, or they
    # starve each other on a small machine.
    export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
    ctest --test-dir build/release -L cpu --output-on-failure -j "$(nproc)" "$@" ;;
  *) echo "usage: scripts/dev.sh demo|test|deps" >&2; exit 2 ;;
esac
