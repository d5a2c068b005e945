#!/usr/bin/env bash
# End-to-end checks of the pocketlm command line, driven as a user would, on random models and adapters this script
# makes (make_random_model, make_random_lora); with GOLDEN_DIR also tokenize and logits against llama.cpp's files.
# usage: cli_test.sh POCKETLM MAKE_RANDOM_MODEL MAKE_RANDOM_LORA GOLDEN_DIR WORKDIR
set -uo pipefail
bin="$1"; mkmodel="$2"; mklora="$3"; golden="$4"; work="$5"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# expect_error NAME ARGS...: exit code 1 and exactly one line on stderr starting with "error: ".
expect_error() {
  local name="$1"; shift
  "$@" >"$work/out" 2>"$work/err" </dev/null
  local code=$?
  local lines; lines=$(wc -l <"$work/err")
  if [[ $code -ne 1 ]]; then fail "$name: exit code $code, expected 1"; cat "$work/err"; return; fi
  if [[ $lines -ne 1 ]] || ! grep -q '^error: ' "$work/err"; then fail "$name: stderr is not one error line:"; cat "$work/err"; return; fi
  echo "ok: $name -> $(cat "$work/err")"
}

# llama-tiny's shape (n_embd 64, 2 layers, 4 heads, 2 KV heads) with the built-in byte-fallback vocabulary; an
# adapter for it, one for another shape and one that says it is for qwen2.
llama="$work/llama.gguf"
made "$mkmodel" "$llama"
made "$mkmodel" "$work/other-shape.gguf" --embd 128 --seed 2
made "$mklora" "$llama" "$work/llama.lora.gguf"
made "$mklora" "$work/other-shape.gguf" "$work/other-shape.lora.gguf"
made "$mklora" "$llama" "$work/qwen2.lora.gguf" --arch qwen2
prompt="$work/prompt.txt"
printf 'Once upon a time, in a small town by the sea, there lived an old clockmaker who wound 128 clocks every day.' \
  >"$prompt"

# --- bad input: one-line errors, exit code 1, no crash ---
expect_error "missing model file" plm run -m "$work/nope.gguf" -p hi
head -c 1000 "$llama" >"$work/trunc-header.gguf"
expect_error "truncated in the header" plm info -m "$work/trunc-header.gguf"
head -c $(($(stat -c %s "$llama") / 2)) "$llama" >"$work/trunc-data.gguf"
expect_error "truncated in tensor data" plm run -m "$work/trunc-data.gguf" -p hi
printf 'GGUX\3\0\0\0' >"$work/magic.gguf"
expect_error "wrong magic" plm info -m "$work/magic.gguf"
printf 'GGUF\7\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' >"$work/version.gguf"
expect_error "unknown version" plm info -m "$work/version.gguf"
: >"$work/empty.gguf"
expect_error "empty file" plm info -m "$work/empty.gguf"
expect_error "adapter of another architecture" plm run -m "$llama" --lora "$work/qwen2.lora.gguf" -p hi
expect_error "adapter of another shape" plm run -m "$llama" --lora "$work/other-shape.lora.gguf" -p hi
expect_error "adapter given as the model" plm run -m "$work/llama.lora.gguf" -p hi
expect_error "model given as an adapter" plm run -m "$llama" --lora "$llama" -p hi
expect_error "prompt longer than the context" plm run -m "$llama" -c 8 -p "$(cat "$prompt") $(cat "$prompt")"
expect_error "prompt file missing" plm run -m "$llama" -f "$work/none.txt"
expect_error "bad sampling option" plm run -m "$llama" -p hi --top-p 0
expect_error "unknown option" plm run -m "$llama" -p hi --frobnicate

# --- info ---
if plm info -m "$llama" >"$work/info" 2>&1 && grep -q 'general.architecture' "$work/info" &&
   grep -q 'blk.0.attn_q.weight' "$work/info" && grep -q 'M parameters' "$work/info"; then
  echo "ok: info"
else fail "info"; cat "$work/info"; fi

# --- tokenize: BOS, then the prompt's ids, which decode back to the prompt ---
got=$(plm tokenize -m "$llama" <"$prompt")
if [[ "$got" =~ ^1( [0-9]+)+$ ]] && [[ $(wc -w <<<"$got") -gt 10 ]]; then echo "ok: tokenize"
else fail "tokenize: got '$got'"; fi

# --- logits: a file, written atomically (no temp file left) ---
if plm logits -m "$llama" -f "$prompt" -o "$work/l.bin" 2>/dev/null && [[ -s "$work/l.bin" ]]; then echo "ok: logits"
else fail "logits command failed"; fi
if ls "$work"/l.bin.tmp-* >/dev/null 2>&1; then fail "logits left a temp file"; fi

# --- with GOLDEN_DIR: tokenize and logits of llama.cpp's llama-tiny on the golden prompt, as llama.cpp made them ---
if [[ -d "$golden/models" ]]; then
  gllama="$golden/models/llama-tiny.gguf"
  gprompt="$golden/prompts/p1.txt"
  # the golden prompt's ids with BOS (the .bin header)
  expected=$(od -An -t d4 -v "$golden/logits/llama-tiny.p1.bin" | tr -s ' \n' ' ' | sed 's/^ //' | cut -d' ' -f3-22)
  got=$(plm tokenize -m "$gllama" <"$gprompt")
  if [[ "$got" == "$expected" ]]; then echo "ok: golden tokenize"; else fail "tokenize: got '$got' expected '$expected'"; fi
  # same header (tokens) and greedy tail as the golden file
  if plm logits -m "$gllama" -f "$gprompt" -o "$work/gl.bin" 2>/dev/null; then
    n=$(stat -c %s "$golden/logits/llama-tiny.p1.bin")
    if [[ $(stat -c %s "$work/gl.bin") -ne $n ]]; then fail "logits: size differs"
    elif ! cmp -s -n 88 "$work/gl.bin" "$golden/logits/llama-tiny.p1.bin"; then fail "logits: header/tokens differ"
    elif ! cmp -s <(tail -c 68 "$work/gl.bin") <(tail -c 68 "$golden/logits/llama-tiny.p1.bin"); then
      fail "logits: greedy tail differs"
    else echo "ok: golden logits"; fi
  else fail "golden logits command failed"; fi
else
  echo "skipped: tokenize and logits against llama.cpp ($golden not found)"
fi

# --- run: greedy is deterministic; a seed gives the same text twice, another seed other text ---
plm run -m "$llama" -p "Once upon a time" -n 24 --temp 0 >"$work/g1" 2>/dev/null || fail "run greedy"
plm run -m "$llama" -p "Once upon a time" -n 24 --temp 0 -t 1 >"$work/g2" 2>/dev/null || fail "run greedy 1 thread"
cmp -s "$work/g1" "$work/g2" && echo "ok: greedy run is the same with 1 and 2 threads" || fail "greedy differs by threads"
plm run -m "$llama" -p "Once upon a time" -n 24 --seed 7 --temp 1 >"$work/s1" 2>/dev/null || fail "run seed"
plm run -m "$llama" -p "Once upon a time" -n 24 --seed 7 --temp 1 >"$work/s2" 2>/dev/null || fail "run seed again"
plm run -m "$llama" -p "Once upon a time" -n 24 --seed 8 --temp 1 >"$work/s3" 2>/dev/null || fail "run other seed"
cmp -s "$work/s1" "$work/s2" && echo "ok: same seed, same text" || fail "same seed gave different text"
cmp -s "$work/s1" "$work/s3" && fail "seeds 7 and 8 gave the same text" || echo "ok: other seed, other text"
plm run -m "$llama" -p "Once upon a time" -n 8 --lora "$work/llama.lora.gguf" \
  --lora-scaled "$work/llama.lora.gguf" 0.5 >/dev/null 2>&1 && echo "ok: two adapters" || fail "run with two adapters"
# --lora takes PATH or NAME=PATH in every command (the name matters to serve only): the same text either way, and
# another text than without the adapter; a path containing '=' that names a file stays a path.
gen() { plm run -m "$llama" -p "Once upon a time" -n 12 --temp 0 "$@" 2>/dev/null; }
cp "$work/llama.lora.gguf" "$work/my=lora.gguf"
with_path=$(gen --lora "$work/llama.lora.gguf")
[[ "$with_path" != "$(gen)" ]] || fail "the adapter does not change the output (test is vacuous)"
[[ "$(gen --lora "story=$work/llama.lora.gguf")" == "$with_path" ]] && echo "ok: --lora NAME=PATH" ||
  fail "--lora NAME=PATH generates other text than --lora PATH"
[[ "$(gen --lora "$work/my=lora.gguf")" == "$with_path" ]] && echo "ok: --lora PATH with '='" ||
  fail "--lora with a file named my=lora.gguf"

# --- bench --json ---
if plm bench -m "$llama" -p 16 -n 4 -r 3 --json >"$work/bench.json" 2>/dev/null &&
   grep -q '"prefill_tps": [0-9]' "$work/bench.json" && grep -q '"decode_tps": [0-9]' "$work/bench.json" &&
   grep -Eq '"kernels": "(SCALAR|EMU128|SSSE3|SSE4|AVX2|AVX3|AVX3_DL|AVX3_ZEN4|NEON|SVE|SVE2|SVE_256|SVE2_128)(\+DOTPROD|\+I8MM)?"' "$work/bench.json"; then
  echo "ok: bench --json"
else fail "bench --json"; cat "$work/bench.json"; fi

echo "cli: $failures failure(s)"
[[ $failures -eq 0 ]]
