#!/usr/bin/env bash
# `pocketlm quantize` driven as a user would: every preset and every pure type on a random f32 model with one layer
# of the golden llama-kq's layout (make_random_model), each result loaded and run; F16 and already quantized inputs;
# the progress bar on a terminal; errors. With GOLDEN_DIR also: llama.cpp's own files reproduced byte for byte from
# its f32 file, and its F16 and Q8_0 files as inputs.
# usage: cli_quantize_test.sh POCKETLM MAKE_RANDOM_MODEL GOLDEN_DIR WORKDIR
set -uo pipefail
bin="$1"; mkmodel="$2"; golden="$3"; work="$4"
rm -rf "$work" && mkdir -p "$work/out"
source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
# llama-kq's layout (n_embd 256, 4 heads, 2 KV heads, tied output, every row a multiple of 256 so every k-quant
# applies) with 1 layer rather than 2 and n_ff 256 rather than 768: 11 tensors (8 matrices, 3 norms), under a third
# of llama-kq's weights. The k-quants' searches cost per weight, and this model is quantized some thirty times (about
# 2 s each under emulation at llama-kq's size); llama-kq itself, two layers, is quantized with GOLDEN_DIR.
shape=(--layers 1 --embd 256 --heads 4 --kv-heads 2 --ff 256 --tied --seed 2)
f32="$work/random-f32.gguf"
f16="$work/random-f16.gguf"
${PLM_EMULATOR:-} "$mkmodel" "$f32" "${shape[@]}" >/dev/null &&
  ${PLM_EMULATOR:-} "$mkmodel" "$f16" "${shape[@]}" --f16 >/dev/null || { echo "FAIL: make_random_model"; exit 1; }
have_golden=0
[[ -f "$golden/models/llama-kq-f32.gguf" ]] && have_golden=1

summary_re='^input [0-9.]+ MiB \([0-9.]+ bits/weight\) -> output [0-9.]+ MiB \([0-9.]+ bits/weight\) in [0-9.]+ s$'

# --- presets with a llama.cpp counterpart: the summary line and one log line per tensor; with GOLDEN_DIR, the
#     golden f32 file quantizes to llama-quantize's files byte for byte ---
# quantize_presets SRC LABEL COMPARE N: COMPARE=1 compares each result with the golden file of its preset; SRC has
# N tensors.
quantize_presets() {
  local src="$1" label="$2" compare="$3" n="$4" p out
  for p in Q8_0 Q4_0 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K IQ4_NL; do
    out="$work/$label-$p.gguf"
    if ! plm quantize "$src" "$out" --type "${p,,}" -t 2 >"$work/stdout" 2>"$work/log"; then
      fail "$label: quantize $p"; cat "$work/log"; continue
    fi
    grep -qE "$summary_re" "$work/stdout" || fail "$label $p: summary line: $(cat "$work/stdout")"
    [[ $(grep -c "^\\[ *[0-9]*/ *$n\\]" "$work/log") -eq $n ]] || fail "$label $p: expected $n per-tensor log lines"
    if [[ $compare -eq 0 ]]; then echo "ok: $label $p"
    elif cmp -s "$out" "$golden/models/llama-kq-$p.gguf"; then echo "ok: $p is llama-quantize's file byte for byte"
    else fail "$p differs from llama-kq-$p.gguf"; fi
  done
}
quantize_presets "$f32" random 0 11
plm quantize "$f32" "$work/t1.gguf" --type Q4_K_M -t 1 >/dev/null 2>&1 &&
  cmp -s "$work/t1.gguf" "$work/random-Q4_K_M.gguf" && echo "ok: same file with 1 thread" || fail "-t 1 differs"
if [[ $have_golden -eq 1 ]]; then
  gf32="$golden/models/llama-kq-f32.gguf"
  quantize_presets "$gf32" golden 1 20
  plm quantize "$gf32" "$work/gt1.gguf" --type Q4_K_M -t 1 >/dev/null 2>&1 &&
    cmp -s "$work/gt1.gguf" "$golden/models/llama-kq-Q4_K_M.gguf" && echo "ok: golden: same file with 1 thread" ||
    fail "golden: -t 1 differs"
else
  echo "skipped: byte-for-byte comparison with llama-quantize's files ($golden not found)"
fi

# --- every preset and every pure type loads and runs ---
for p in Q4_1 Q5_0 Q5_1 Q3_K_S Q3_K_L Q4_K_S Q5_K_S IQ4_XS F16 BF16 Q4_K_M "Q2_K --pure" "Q3_K --pure" "Q4_K --pure" \
         "Q5_K --pure" "Q6_K --pure" "IQ4_XS --pure" "IQ4_NL --pure"; do
  out="$work/r.gguf"
  # shellcheck disable=SC2086
  if ! plm quantize "$f32" "$out" --type $p >"$work/stdout" 2>"$work/log"; then fail "quantize $p"; cat "$work/log"; continue; fi
  if plm run -m "$out" -p "Once upon a time" -n 4 --temp 0 >"$work/text" 2>"$work/runlog" && [[ -s "$work/text" ]]; then
    echo "ok: $p runs ($(cat "$work/stdout"))"
  else fail "$p: run failed"; cat "$work/runlog"; fi
done
plm quantize "$f32" "$work/pure.gguf" --type q3_k --pure >/dev/null 2>&1
plm info -m "$work/pure.gguf" >"$work/info" 2>&1
if grep -q 'f32 3 q3_K 8$' "$work/info" && grep -q 'general.file_type *u32 *12' "$work/info"; then echo "ok: --pure Q3_K"
else fail "--pure Q3_K types"; grep -E 'tensors by type|file_type' "$work/info"; fi

# --- F16 input, and an already quantized input with consent (with GOLDEN_DIR also llama.cpp's files) ---
# half_and_requantize LABEL F16 Q8_0
# The Q8_0 input is requantized to Q4_0: every matrix is still read back from q8_0 and converted (to q4_0, the tied
# embedding to q6_K), and Q4_0's quantizer costs a fraction of Q4_K_M's searches.
half_and_requantize() {
  plm quantize "$2" "$work/$1-f16-q8.gguf" --type Q8_0 >/dev/null 2>&1 &&
    plm run -m "$work/$1-f16-q8.gguf" -p hi -n 2 >/dev/null 2>&1 && echo "ok: $1: F16 -> Q8_0" || fail "$1: F16 -> Q8_0"
  plm quantize "$3" "$work/$1-re.gguf" --type Q4_0 --allow-requantize >/dev/null 2>&1 &&
    plm run -m "$work/$1-re.gguf" -p hi -n 2 >/dev/null 2>&1 && echo "ok: $1: requantize with consent" ||
    fail "$1: requantize"
}
half_and_requantize random "$f16" "$work/random-Q8_0.gguf"
if [[ $have_golden -eq 1 ]]; then
  half_and_requantize golden "$golden/models/llama-kq-F16.gguf" "$golden/models/llama-kq-Q8_0.gguf"
fi

# --- progress bar on a terminal: one line redrawn with \r, with ETA ---
if command -v script >/dev/null && [[ -z "${PLM_EMULATOR:-}" ]]; then
  script -qec "'$bin' quantize '$f32' '$work/tty.gguf' --type q4_k_m" "$work/tty.log" >/dev/null 2>&1
  if grep -q $'\r\[' "$work/tty.log" && grep -q 'ETA' "$work/tty.log" && grep -q '11/11 tensors' "$work/tty.log" &&
     ! grep -q '^\[ *1/' "$work/tty.log"; then echo "ok: progress bar on a terminal"
  else fail "progress bar"; cat -v "$work/tty.log" | head -5; fi
fi

# --- errors: one line, exit 1, nothing written ---
o="$work/out/x.gguf"
expect_clean_error "already quantized" "allow requantization" plm quantize "$work/random-Q4_0.gguf" "$o" --type q4_k_m
expect_clean_error "unknown preset" "Q4_K_M.*IQ4_XS" plm quantize "$f32" "$o" --type q4_k_z
expect_clean_error "bad override type" "not a tensor type" plm quantize "$f32" "$o" --type q4_k_m --output-tensor-type q9
expect_clean_error "unwritable output" "cannot create" plm quantize "$f32" "$work/out/none/x.gguf" --type q8_0
expect_clean_error "missing input" "cannot|No such" plm quantize "$work/none.gguf" "$o" --type q8_0
expect_clean_error "missing --type" "type" plm quantize "$f32" "$o"
cp "$f32" "$work/same.gguf"
expect_clean_error "input is the output" "is the input" plm quantize "$work/same.gguf" "$work/./same.gguf" --type q8_0
cmp -s "$f32" "$work/same.gguf" || fail "input was modified"
if ls "$work"/*.tmp-* >/dev/null 2>&1; then fail "temp files left"; fi

echo "cli quantize: $failures failure(s)"
[[ $failures -eq 0 ]]
