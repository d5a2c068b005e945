#!/usr/bin/env bash
# End-to-end checks of `pocketlm adapter convert`, `adapter info` and `adapter merge` on a random llama model and
# adapter this script makes (make_random_model, make_random_lora: the golden llama-tiny.lora-r8's settings), and with
# GOLDEN_DIR also the conversion round trip of the golden adapter (written by another tool, tools/mklora.py).
# usage: adapter_cli_test.sh POCKETLM MAKE_RANDOM_MODEL MAKE_RANDOM_LORA GOLDEN_DIR WORKDIR
set -uo pipefail
bin="$1"; mkmodel="$2"; mklora="$3"; golden="$4"; work="$5"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# expect_error NAME PATTERN ARGS...: exit code 1, one stderr line "error: ..." that contains PATTERN.
expect_error() {
  local name="$1" pattern="$2"; shift 2
  "$@" >"$work/out" 2>"$work/err" </dev/null
  local code=$?
  if [[ $code -ne 1 ]]; then fail "$name: exit code $code, expected 1"; cat "$work/err"; return; fi
  if [[ $(wc -l <"$work/err") -ne 1 ]] || ! grep -q '^error: ' "$work/err" || ! grep -qF -- "$pattern" "$work/err"; then
    fail "$name: expected one error line containing '$pattern', got:"; cat "$work/err"; return
  fi
  echo "ok: $name -> $(cat "$work/err")"
}

# llama-tiny's shape (n_embd 64, 2 layers, 4 heads, 2 KV heads, untied output: 21 tensors) and a rank-8, alpha-16
# adapter on all 7 projections of both layers; a model of another shape, and an adapter that says it is for qwen2.
llama="$work/llama.gguf"
adapter="$work/llama.lora-r8.gguf"
made "$mkmodel" "$llama" --ff 160
made "$mklora" "$llama" "$adapter" --rank 8 --alpha 16
made "$mkmodel" "$work/other-shape.gguf" --embd 128 --seed 2
made "$mklora" "$llama" "$work/qwen2.lora.gguf" --arch qwen2
# The merges below measure on this sentence (108 positions: the random vocabulary spells words letter by letter);
# the built-in paragraph is 1846 positions for each of the measurement's three forward passes, several seconds per
# merge under emulation. One merge at the end measures on the built-in text, on a model made small for it.
text="$work/measure.txt"
echo "Once upon a time, a small fox lived at the edge of a quiet forest. Every morning she walked to the river." \
  >"$text"

# round_trip LABEL BASE ADAPTER: GGUF -> PEFT -> GGUF; both describe themselves alike and generate the same text.
round_trip() {
  local label="$1" base="$2" orig="$3" dir="$work/$1"
  mkdir -p "$dir"
  if plm adapter convert "$orig" "$dir/peft" -m "$base" --base-name my/llama-tiny >"$dir/log" 2>&1 &&
     [[ -f "$dir/peft/adapter_config.json" && -f "$dir/peft/adapter_model.safetensors" ]] &&
     grep -q '"base_model_name_or_path": "my/llama-tiny"' "$dir/peft/adapter_config.json" &&
     grep -q '"peft_type": "LORA"' "$dir/peft/adapter_config.json"; then
    echo "ok: $label: GGUF -> PEFT"
  else fail "$label: GGUF -> PEFT"; cat "$dir/log"; fi
  if plm adapter convert "$dir/peft" "$dir/back.gguf" -m "$base" >"$dir/log" 2>&1; then
    echo "ok: $label: PEFT -> GGUF"
  else fail "$label: PEFT -> GGUF"; cat "$dir/log"; fi

  # info: both formats; the converted adapter describes itself like the original
  plm adapter info "$orig" >"$dir/info-orig" 2>&1 || fail "$label: info on the original adapter"
  plm adapter info "$dir/back.gguf" >"$dir/info-back" 2>&1 || fail "$label: info on the converted adapter"
  for want in "format: GGUF LoRA adapter" "architecture: llama" "rank: 8" "alpha: 16" "tensors: 28 (14 pairs)" \
              "attn_q x2"; do
    grep -qF "$want" "$dir/info-orig" || fail "$label: info lacks '$want'"
  done
  if cmp -s <(grep -v -e '^path:' -e '^size:' "$dir/info-orig") <(grep -v -e '^path:' -e '^size:' "$dir/info-back"); then
    echo "ok: $label: info of the round-tripped adapter matches"
  else fail "$label: info differs after the round trip"; diff "$dir/info-orig" "$dir/info-back"; fi
  if plm adapter info "$dir/peft" >"$dir/info-peft" 2>&1 && grep -q "format: PEFT LoRA" "$dir/info-peft" &&
     grep -q "rank: 8" "$dir/info-peft" && grep -q "base model: my/llama-tiny" "$dir/info-peft" &&
     grep -q "self_attn.q_proj x2" "$dir/info-peft"; then
    echo "ok: $label: info on a PEFT directory"
  else fail "$label: info on a PEFT directory"; cat "$dir/info-peft"; fi

  # the converted adapter generates exactly what the original does
  plm run -m "$base" --lora "$orig" -p "Once upon a time" -n 12 --temp 0 >"$dir/g-orig" 2>/dev/null ||
    fail "$label: run with original"
  plm run -m "$base" --lora "$dir/back.gguf" -p "Once upon a time" -n 12 --temp 0 >"$dir/g-back" 2>/dev/null ||
    fail "$label: run with converted"
  cmp -s "$dir/g-orig" "$dir/g-back" && echo "ok: $label: converted adapter generates the same text" ||
    fail "$label: generation differs"
}

# --- GGUF -> PEFT -> GGUF ---
round_trip random "$llama" "$adapter"
if [[ -d "$golden/models" ]]; then
  round_trip golden "$golden/models/llama-tiny.gguf" "$golden/models/llama-tiny.lora-r8.gguf"
else
  echo "skipped: the golden adapter's round trip ($golden not found)"
fi
peft="$work/random/peft"
cp "$work/random/g-orig" "$work/g-orig"

# --- merge: the merged model alone generates what the base does with the adapter at run time ---
if plm adapter merge -m "$llama" --lora "$adapter" -o "$work/merged.gguf" --text "$text" \
     >"$work/merge-out" 2>"$work/log" &&
   grep -q '^KL(base+adapters || base): ' "$work/merge-out" && grep -q '^KL(base+adapters || merged): ' "$work/merge-out" &&
   grep -q "^kept: 100.0% of the adapters' effect (f32" "$work/merge-out" &&
   grep -q '^wrote .*: 14 of 21 tensors merged (f32) from 1 adapter' "$work/merge-out"; then
  echo "ok: merge into the f32 base"
else fail "merge into the f32 base"; cat "$work/merge-out" "$work/log"; fi
plm run -m "$work/merged.gguf" -p "Once upon a time" -n 12 --temp 0 >"$work/g-merged" 2>/dev/null || fail "run merged"
cmp -s "$work/g-orig" "$work/g-merged" && echo "ok: merged model generates what base + adapter does" ||
  fail "merged generation differs"
plm run -m "$llama" --lora-scaled "$adapter" 0.5 -p "Once upon a time" -n 12 --temp 0 >"$work/g-half" 2>/dev/null
plm adapter merge -m "$llama" --lora-scaled "$adapter" 0.5 -o "$work/merged-half.gguf" --text "$text" >/dev/null 2>&1 ||
  fail "merge at 0.5"
plm run -m "$work/merged-half.gguf" -p "Once upon a time" -n 12 --temp 0 >"$work/g-merged-half" 2>/dev/null
cmp -s "$work/g-half" "$work/g-merged-half" && echo "ok: merged at scale 0.5" || fail "merged at 0.5 differs"

# --- merge into quantized bases: measured; refused below --min-kept unless --force ---
for t in q8_0 q4_0; do
  plm quantize "$llama" "$work/llama-$t.gguf" --type "$t" --pure >/dev/null 2>&1 || fail "quantize $t"
done
if plm adapter merge -m "$work/llama-q8_0.gguf" --lora "$adapter" -o "$work/merged-q8.gguf" --text "$text" \
     >"$work/merge-out" 2>"$work/log" &&
   grep -qE "^kept: (9[0-9]|100)\.[0-9]% of the adapters' effect through requantization to q8_0 \(minimum 90\.0%\)$" \
     "$work/merge-out"; then
  echo "ok: merge into q8_0: $(grep '^kept' "$work/merge-out")"
else fail "merge into q8_0"; cat "$work/merge-out" "$work/log"; fi
expect_error "merge below --min-kept" "does not survive requantization to q4_0" \
  plm adapter merge -m "$work/llama-q4_0.gguf" --lora "$adapter" -o "$work/merged-q4.gguf" --min-kept 0.999 \
    --text "$text"
grep -q "^kept: .*requantization to q4_0 (minimum 99.9%)" "$work/out" || fail "the refusal does not print the measurement"
[[ -e "$work/merged-q4.gguf" ]] && fail "a refused merge left its output"
if plm adapter merge -m "$work/llama-q4_0.gguf" --lora "$adapter" -o "$work/merged-q4.gguf" --min-kept 0.999 --force \
     --text "$text" >"$work/merge-out" 2>"$work/log" && grep -q "written because of --force" "$work/log" &&
   [[ -f "$work/merged-q4.gguf" ]]; then
  echo "ok: --force writes it anyway"
else fail "merge --force"; cat "$work/merge-out" "$work/log"; fi
expect_error "merge an adapter of another model" "made for architecture 'qwen2'" \
  plm adapter merge -m "$llama" --lora "$work/qwen2.lora.gguf" -o "$work/merged-x.gguf"
expect_error "merge without adapters" "nothing to merge" plm adapter merge -m "$llama" -o "$work/merged-x.gguf"
[[ -e "$work/merged-x.gguf" ]] && fail "a failed merge left output behind"
# Without --text the merge measures on the built-in paragraph: here on a 1-layer, 16-wide model with a 64-token
# context (the measurement's window), so its 1846 positions are cheap.
made "$mkmodel" "$work/mini.gguf" --layers 1 --embd 16 --heads 2 --kv-heads 1 --ctx 64
made "$mklora" "$work/mini.gguf" "$work/mini.lora.gguf"
if plm adapter merge -m "$work/mini.gguf" --lora "$work/mini.lora.gguf" -o "$work/merged-mini.gguf" >"$work/merge-out" \
     2>"$work/log" && grep -q '^measured over [0-9]* positions of the built-in text$' "$work/merge-out" &&
   grep -q "^kept: 100.0% of the adapters' effect (f32" "$work/merge-out" && [[ -f "$work/merged-mini.gguf" ]]; then
  echo "ok: merge measured on the built-in text"
else fail "merge on the built-in text"; cat "$work/merge-out" "$work/log"; fi

# --- errors: one line, exit code 1 ---
expect_error "PEFT -> GGUF without a base" "needs its base model: -m" plm adapter convert "$peft" "$work/x.gguf"
expect_error "llama GGUF -> PEFT without a base" "pass -m BASE.gguf" plm adapter convert "$adapter" "$work/x"
expect_error "missing input" "does not exist" plm adapter convert "$work/nope.gguf" "$work/x"
expect_error "a model is not an adapter" "not a LoRA factor" plm adapter info "$llama"
expect_error "adapter of another model" "adapter made for another model" \
  plm adapter convert "$peft" "$work/x.gguf" -m "$work/other-shape.gguf"
cp -r "$peft" "$work/peft-mts"
sed -i 's/"peft_type": "LORA"/"peft_type": "LORA", "modules_to_save": ["lm_head"]/' "$work/peft-mts/adapter_config.json"
expect_error "modules_to_save" "modules_to_save is not empty" plm adapter convert "$work/peft-mts" "$work/x.gguf" -m "$llama"
[[ -e "$work/x.gguf" || -e "$work/x" ]] && fail "a failed conversion left output behind"
if ls "$work" "$peft" | grep -q '\.tmp-'; then fail "temp files left behind"; fi

echo "adapter cli: $failures failure(s)"
[[ $failures -eq 0 ]]
