#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz and runs each for a bounded time from a
# temporary copy of its seed corpus (the committed corpus is never grown). Exits non-zero on any crash, leak,
# sanitizer report or timeout.
#   FUZZ_SECONDS=60   run time per target
#   FUZZ_JOBS=2       build parallelism, and how many targets fuzz at once (each is one process)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-2}"
build="$root/build-fuzz"
shared="$root/../shared"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPOCKETLM_FUZZ=ON -DPOCKETLM_TESTS=OFF >/dev/null

targets=(fuzz_gguf fuzz_imatrix)
run_tokenizer=0
if [[ ! -f "$root/fuzz/fuzz_tokenizer.cpp" ]]; then
  echo "run-fuzzers: skipping fuzz_tokenizer (fuzz/fuzz_tokenizer.cpp does not exist yet)"
elif [[ ! -f "$shared/golden/tokenizers/ggml-vocab-gpt-2.gguf" ]]; then
  echo "run-fuzzers: skipping fuzz_tokenizer ($shared/golden is absent)"
else
  targets+=(fuzz_tokenizer)
  run_tokenizer=1
fi
run_chat_align=0
if [[ ! -f "$shared/golden/models/llama-kq-Q4_K_M.gguf" ]]; then
  echo "run-fuzzers: skipping fuzz_chat_align ($shared/golden is absent)"
else
  targets+=(fuzz_chat_align)
  run_chat_align=1
fi
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

work="$(mktemp -d "${TMPDIR:-/tmp}/plm-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

run() {  # name, corpus dir (may be absent)
  local name="$1" seeds="$2"
  mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
  if [[ -d "$seeds" ]]; then cp -r "$seeds"/. "$work/$name/corpus/"; fi
  echo "run-fuzzers: $name for ${seconds}s"
  if ! "$build/fuzz/$name" "$work/$name/corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$name/artifacts/" 2>"$work/$name/log"; then
    tail -n 60 "$work/$name/log"
    mkdir -p "$root/build-fuzz/crashes"
    cp "$work/$name/artifacts/"* "$root/build-fuzz/crashes/" 2>/dev/null || true
    echo "run-fuzzers: $name FAILED (reproducers copied to build-fuzz/crashes/)"
    return 1
  fi
  grep -E "^stat::number_of_executed_units|^Done" "$work/$name/log" || true
}

# The targets run side by side, at most $jobs at once; each reports when it ends.
status=0
start() {  # runs `run "$@"` in the background once fewer than $jobs are running
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || status=1; done
  run "$@" &
}
start fuzz_gguf "$root/fuzz/corpus/gguf"
start fuzz_imatrix "$root/fuzz/corpus/imatrix"
if [[ $run_tokenizer == 1 ]]; then
  PLM_FUZZ_VOCAB="$shared/golden/tokenizers/ggml-vocab-gpt-2.gguf" start fuzz_tokenizer "$root/fuzz/corpus/tokenizer"
fi
if [[ $run_chat_align == 1 ]]; then
  # Its default vocabularies (llama-kq, phi-3, mpt, deepseek-llm, starcoder) are read from PLM_GOLDEN_DIR.
  PLM_GOLDEN_DIR="$shared/golden" start fuzz_chat_align "$root/fuzz/corpus/chat_align"
fi
while (($(jobs -rp | wc -l) > 0)); do wait -n || status=1; done
if [[ $status == 0 ]]; then echo "run-fuzzers: all targets ran clean"; fi
exit $status
