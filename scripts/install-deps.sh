#!/usr/bin/env bash
# Installs every Debian package pocketlm needs to build, test and cross-test. Idempotent: packages already
# present are skipped, so the README commands are cheap to re-run. apt's output goes to a log file that is shown
# only when it fails.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --build    only what building the `pocketlm` tool and running the demo need
#                                      (scripts/demo.sh: no test frameworks, no PyTorch)
#   scripts/install-deps.sh --cross    also the AArch64 cross compiler, arm64 libraries and qemu-user
#   scripts/install-deps.sh --corpus   also the documentation packages of the base-model corpus
#                                      (scripts/corpus/sources.tsv, several hundred MB) and sentencepiece
set -euo pipefail

build=(
  build-essential cmake ninja-build pkg-config git
  libhwy-dev          # Google Highway: portable SIMD with runtime dispatch (kernels)
  libcli11-dev        # command-line parsing (tools/cli only)
  nlohmann-json3-dev  # JSON: JSONL datasets, safetensors headers, PEFT configs
  libcpp-httplib-dev  # HTTP server of `pocketlm serve` (a compiled library, not header-only; host builds only)
  libxxhash-dev       # xxHash (header-only use): base-model fingerprints recorded in adapters
  python3             # the demo's dataset generator (scripts/datasets)
)
want=(
  "${build[@]}"
  libgtest-dev libgmock-dev googletest  # unit and conformance tests
  libbenchmark-dev    # kernel micro-benchmarks (bench/micro)
  clang libclang-rt-14-dev  # sanitizers and libFuzzer
  clang-format
  python3-numpy       # ../shared/tools model generators used by tests and benchmarks
  python3-torch       # PyTorch reference for training-step conformance tests
  unicode-data        # UnicodeData.txt, source of the tokenizer's generated category and NFC tables
  bzip2               # reads unicode-data's NormalizationTest.txt.bz2 (the NFC conformance test)
)
cross=(g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libgtest-dev:arm64 libstdc++6:arm64 libc6-dev-arm64-cross)

for arg in "$@"; do
  [[ $arg == --build ]] && want=("${build[@]}")
done
for arg in "$@"; do
  case "$arg" in
    --build) ;;
    --cross)
      if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
      fi
      want+=("${cross[@]}")
      ;;
    --corpus)
      # First column of scripts/corpus/sources.tsv; spm_train / spm_encode train and check the tokenizer.
      want+=(sentencepiece)
      while IFS=$'\t' read -r pkg _; do
        [[ -z "$pkg" || "$pkg" == \#* ]] || want+=("$pkg")
      done <"$(dirname "$0")/corpus/sources.tsv"
      ;;
    *) echo "error: unknown argument '$arg' (expected --build, --cross or --corpus)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  log=$(mktemp "${TMPDIR:-/tmp}/pocketlm-apt.XXXXXX.log")
  echo "installing ${#missing[@]} Debian package(s) with apt-get (log: $log): ${missing[*]}"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "error: apt-get failed (whole log: $log)" >&2
    exit 1
  fi
fi
