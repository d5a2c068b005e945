# Shared setup of the bench/ scripts (sourced): dependencies, a release build, and the qwen2-0.5b-shaped random
# model the issues' benchmarks use, made with ../shared/tools/mkmodel.py and quantized by pocketlm.
#   bench_setup BUILD_DIR      installs packages, configures and builds pocketlm; sets $bin and $work
#   bench_model TYPE THREADS   prints the path of the model in TYPE (f16 or a quantize preset), making it if missing
shared=../shared

bench_setup() {
  [[ -d $shared/tools ]] || { echo "bench needs ../shared/tools (not in a plain clone)" >&2; exit 1; }
  bash scripts/install-deps.sh
  cmake --preset release -B "$1" >/dev/null
  cmake --build "$1" --target pocketlm -j "$(nproc)" >/dev/null
  bin=$1/tools/cli/pocketlm
  work=build/bench
  mkdir -p $work
}

bench_model() {
  local f16=$work/qwen2-0.5b-f16.gguf
  [[ -f $f16 ]] || /usr/bin/python3 $shared/tools/mkmodel.py qwen2-0.5b $shared/golden/tokenizers/ggml-vocab-gpt-2.gguf \
    $f16 --f16 >&2
  if [[ $1 == f16 ]]; then
    echo $f16
    return
  fi
  local model=$work/qwen2-0.5b-$1.gguf
  [[ -f $model ]] || $bin quantize $f16 $model --type $1 -t "$2" >/dev/null
  echo $model
}
