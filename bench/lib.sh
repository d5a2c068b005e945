# Shared setup of the bench/ scripts (sourced): dependencies, a release build, the qwen2-0.5b-shaped random model the
# issues' benchmarks use (made with ../shared/tools/mkmodel.py, quantized by pocketlm), and what a report records
# beside each figure: the commit, the CPU and the read bandwidth it was measured with.
#   bench_setup BUILD_DIR      installs packages, configures and builds pocketlm and the read-bandwidth tool; sets
#                              $bin and $work
#   bench_model TYPE THREADS   prints the path of the model in TYPE (f16 or a quantize preset), making it if missing
#   bench_commit               prints the commit of the working tree: short hash, "+dirty" when tracked files differ
#   bench_cpu                  prints the CPU: model name, cpuid family / model / stepping, logical CPUs
#   bench_readbw THREADS       prints the read bandwidth in GB/s with THREADS threads (after bench_setup)
#   bench_stamp TEXT           prints "measured DATE at commit C on CPU, TEXT", the first line of a script's report
shared=../shared

bench_setup() {
  [[ -d $shared/tools ]] || { echo "bench needs ../shared/tools (not in a plain clone)" >&2; exit 1; }
  bash scripts/install-deps.sh
  cmake --preset release -B "$1" >/dev/null
  cmake --build "$1" --target pocketlm -j "$(nproc)" >/dev/null
  bin=$1/tools/cli/pocketlm
  work=build/bench
  mkdir -p $work
  gcc -O3 -march=native -fopenmp $shared/tools/readbw.c -o $work/readbw  # a measuring tool, not pocketlm itself
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

# The numbers in a report belong to a commit: the one checked out, marked "+dirty" when tracked files differ from it
# (the binary was then built from changes no commit holds). Untracked files do not count; "unknown" outside git.
bench_commit() {
  local commit
  commit=$(git rev-parse --short HEAD 2>/dev/null) || { echo unknown; return 0; }
  [[ -z $(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null) ]] || commit+="+dirty"
  echo "$commit"
}

# Cloud machines often name the CPU only "Intel(R) Xeon(R) Processor" or "AMD EPYC": the cpuid family / model /
# stepping tell the generation apart (lscpu prints ARM cores' part names the same way).
bench_cpu() {
  local info name family model stepping
  info=$(LC_ALL=C lscpu 2>/dev/null || true)
  name=$(sed -n 's/^Model name: *//p' <<<"$info" | head -1)
  family=$(sed -n 's/^CPU family: *//p' <<<"$info" | head -1)
  model=$(sed -n 's/^Model: *//p' <<<"$info" | head -1)
  stepping=$(sed -n 's/^Stepping: *//p' <<<"$info" | head -1)
  [[ -n $name ]] || name=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -1)
  echo "${name:-unknown CPU} (family ${family:-?}, model ${model:-?}, stepping ${stepping:-?}; $(nproc) logical CPUs)"
}

# One measurement of ../shared/tools/readbw.c (its line goes to stderr). Other tenants' memory traffic moves it by up
# to ~25% within minutes: scripts measure before and after their runs and keep the higher.
bench_readbw() {
  local line
  line=$(OMP_NUM_THREADS=$1 $work/readbw)
  echo "$line" >&2
  sed -E 's/.*: ([0-9.]+) GB\/s/\1/' <<<"$line"
}

bench_stamp() {
  echo "measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(bench_commit) on $(bench_cpu), $*"
}
