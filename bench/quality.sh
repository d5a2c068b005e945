#!/usr/bin/env bash
# Quantization quality (issue "Every 2-bit GGUF runs, and calibration makes low-bit quantization as good as
# llama.cpp's"): the shipped base model (models/pocketlm-base, F16 = the reference) quantized to every preset from
# IQ1_S to Q8_0, without and with an importance matrix that `pocketlm calibrate` computes on a calibration text, each
# scored by `pocketlm eval --kl` on a different, held-out text as llama-perplexity --kl-divergence scores it
# (chunks of --ctx tokens, second half of each scored): mean KLD, 99th-percentile KLD, same-top-token rate and
# PPL(Q)/PPL(base). Writes bench/QUALITY.md and prints it.
#
# Texts: CMake's reStructuredText manuals (Debian package cmake-data, /usr/share/cmake-*/Help/manual/*.rst,
# BSD-3-Clause, Kitware), sorted by name and split alternately: the 1st, 3rd, ... file are the calibration text,
# the 2nd, 4th, ... the held-out text, so no sentence is in both.
#
# With --llama DIR (a llama.cpp build/bin with llama-imatrix, llama-quantize and llama-perplexity, e.g. from
# ../shared/tools/build_llamacpp.sh), the same pipeline runs with llama.cpp's tools on the same files as a check:
# its mean KLD beside pocketlm's, and whether llama-quantize given pocketlm's importance matrix writes the same bytes.
#   bench/quality.sh [--llama DIR] [--presets "Q4_K_M IQ2_XS ..."] [--ctx N] [--chunks N] [--threads N]
#                    [--build-dir DIR] [--resume]
# --chunks: score the first N chunks of the held-out text (default 128: 16k scored tokens; all: 0).
# --resume: keep the importance matrices, llama.cpp's base logits and the rows of an earlier run with the same
# settings (build/bench/quality), measure only the presets given, and write the table of all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
command="bench/quality.sh${*:+ $*}"
presets="IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M Q2_K_S Q2_K Q3_K_S Q3_K_M Q3_K_L IQ4_XS
         IQ4_NL Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0"
llama=""
ctx=256
chunks=128
threads=2
build=build/release
resume=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --llama) llama="$2"; shift 2 ;;
    --presets) presets="$2"; shift 2 ;;
    --ctx) ctx="$2"; shift 2 ;;
    --chunks) chunks="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --resume) resume=1; shift ;;
    *) echo "usage: $0 [--llama DIR] [--presets LIST] [--ctx N] [--chunks N] [--threads N] [--build-dir DIR]" \
      "[--resume]" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
bench_setup "$build"
commit=$(bench_commit)
cpu=$(bench_cpu)
model=models/pocketlm-base/pocketlm-base-f16.gguf
q=$work/quality
[[ $resume == 1 ]] || rm -rf $q
mkdir -p $q
touch $q/rows.txt

manuals=$(ls -d /usr/share/cmake-*/Help/manual 2>/dev/null | sort -V | tail -1)
[[ -n $manuals ]] || { echo "bench/quality.sh needs the cmake-data package (its manuals are the texts)" >&2; exit 1; }
: >$q/calib.txt
: >$q/heldout.txt
i=0
for f in $(ls $manuals/*.rst | sort); do
  if ((i % 2 == 0)); then cat "$f" >>$q/calib.txt; else cat "$f" >>$q/heldout.txt; fi
  i=$((i + 1))
done

[[ -f $q/pocketlm.imatrix ]] ||
  $bin calibrate -m $model --text $q/calib.txt -o $q/pocketlm.imatrix -c $ctx -t $threads >$q/calibrate.log 2>&1
if [[ -n $llama && ! -f $q/llama.imatrix ]]; then
  $llama/llama-imatrix -m $model -f $q/calib.txt -o $q/llama.imatrix -c $ctx -t $threads >$q/llama-imatrix.log 2>&1
  $llama/llama-perplexity -m $model -f $q/heldout.txt -c $ctx --chunks $chunks -t $threads \
    --kl-divergence-base $q/base.kld \
    >$q/llama-base.log 2>&1
fi

# "mean p99 same_top ppl_ratio" from pocketlm eval --kl's printout (llama-perplexity's labels).
kl_fields() {
  awk -F: '/^Mean    KLD/ {split($2, a, " "); mean = a[1]}
           /^99\.0%   KLD/ {split($2, a, " "); p99 = a[1]}
           /^Same top p/ {split($2, a, " "); top = a[1]}
           /^Mean PPL\(Q\)\/PPL\(base\)/ {split($2, a, " "); ratio = a[1]}
           END {print mean, p99, top, ratio}' "$1"
}

# One line per (preset, imatrix) in rows.txt; a preset measured again replaces its old line.
add_row() {
  grep -v "^$1 $2 " $q/rows.txt >$q/rows.tmp || true
  echo "$*" >>$q/rows.tmp
  mv $q/rows.tmp $q/rows.txt
  echo "$*"
}
for p in $presets; do
  for im in none pocketlm; do
    out=$q/$p-$im.gguf
    args=()
    [[ $im == none ]] || args=(--imatrix $q/pocketlm.imatrix)
    if ! $bin quantize $model $out --type $p -t $threads "${args[@]}" >$q/quantize.out 2>$q/quantize.err; then
      if grep -q "needs an importance matrix" $q/quantize.err; then
        add_row $p $im refused
        continue
      fi
      cat $q/quantize.err >&2
      exit 1
    fi
    bpw=$(sed -nE 's/.*-> output [0-9.]+ MiB \(([0-9.]+) bits\/weight\).*/\1/p' $q/quantize.out)
    $bin eval -m $out --kl $model --text $q/heldout.txt -c $ctx --chunks $chunks -t $threads >$q/kl.txt 2>$q/kl.err
    llama_kld=- same=-
    if [[ -n $llama ]]; then
      largs=()
      [[ $im == none ]] || largs=(--imatrix $q/pocketlm.imatrix)
      if $llama/llama-quantize "${largs[@]}" $model $q/llama-$p-$im.gguf $p $threads >$q/lq.log 2>&1; then
        cmp -s $out $q/llama-$p-$im.gguf && same=yes || same=no
        # llama.cpp's own pipeline: its importance matrix, its quantizer, its perplexity tool.
        largs=()
        [[ $im == none ]] || largs=(--imatrix $q/llama.imatrix)
        $llama/llama-quantize "${largs[@]}" $model $q/llama-own-$p-$im.gguf $p $threads >$q/lq.log 2>&1
        $llama/llama-perplexity -m $q/llama-own-$p-$im.gguf -f $q/heldout.txt -c $ctx --chunks $chunks -t $threads \
          --kl-divergence-base $q/base.kld --kl-divergence >$q/lp.log 2>&1
        llama_kld=$(awk -F: '/^Mean    KLD/ {split($2, a, " "); print a[1]}' $q/lp.log)
      else
        same=refused
      fi
    fi
    add_row $p $im "$(stat -c %s $out)" "$bpw" $(kl_fields $q/kl.txt) "$llama_kld" "$same"
  done
done

scored_chunks=$(sed -nE 's/.*: ([0-9]+) chunks of .*/\1/p' $q/kl.txt | head -1)
all_presets="IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M Q2_K_S Q2_K Q3_K_S Q3_K_M Q3_K_L IQ4_XS
             IQ4_NL Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0"
/usr/bin/python3 - "$command" "$commit" "$cpu" "$ctx" "${scored_chunks:-?}" "$manuals" "${llama:-}" "$q/rows.txt" \
  $all_presets <<'PY'
import datetime, sys
command, commit, cpu, ctx, chunks, manuals, llama, rows_file = sys.argv[1:9]
order = {p: i for i, p in enumerate(sys.argv[9:])}
rows = [l.split() for l in open(rows_file) if l.strip()]
rows.sort(key=lambda r: (order.get(r[0], len(order)), r[1] != "none"))
lines = ["# Quantization quality (bench/quality.sh)", "",
         f"Command: `{command}`. Measured {datetime.date.today()} at commit {commit} on {cpu}.", "",
         f"Model: `models/pocketlm-base` (8M parameters), its F16 file as the reference. Calibration text: the odd-"
         f"numbered files of `{manuals}/*.rst` (CMake's manuals, Debian package cmake-data, BSD-3-Clause, Kitware) "
         f"in name order; held-out text: the even-numbered ones. Importance matrix: `pocketlm calibrate -c {ctx}` "
         f"on the calibration text. Scores: `pocketlm eval --kl` on the held-out text, {chunks} chunks of {ctx} "
         "tokens, the second half of each scored, as llama-perplexity --kl-divergence scores them.", "",
         "KLD: KL divergence of the quantized model's next-token distribution from the F16 model's, in nats per "
         "token (mean and 99th percentile over the scored positions). Same top: how often both pick the same most "
         "likely token. PPL ratio: perplexity of the quantized model over the F16 model's on the held-out text.", ""]
head = "| preset | imatrix | file bytes | bits/weight | mean KLD | 99% KLD | same top | PPL ratio |"
sep = "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
if llama:
    head += " llama.cpp mean KLD | same bytes as llama-quantize |"
    sep += " ---: | --- |"
lines += [head, sep]
for r in rows:
    if r[2] == "refused":
        lines.append(f"| {r[0]} | {r[1]} | refused: needs an importance matrix | | | | | |" + (" | |" if llama else ""))
        continue
    p, im, size, bpw, mean, p99, top, ratio, lk, same = r
    line = f"| {p} | {im} | {int(size):,} | {bpw} | {mean} | {p99} | {top}% | {ratio} |"
    if llama:
        line += f" {lk} | {same} |"
    lines.append(line)
if llama:
    lines += ["", "llama.cpp mean KLD: the same preset made by llama.cpp's own pipeline (llama-imatrix on the same "
              "calibration text, llama-quantize, llama-perplexity --kl-divergence on the same held-out text), build "
              f"in `{llama}`. Same bytes: llama-quantize given pocketlm's importance matrix wrote the identical file."]
open("bench/QUALITY.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
