#!/usr/bin/env bash
# make_random_model's options for a from-scratch base model: --vocab copies the tokenizer (the model then
# tokenizes exactly as the vocabulary file), shape options land in the metadata, the parameter count is right,
# --init-std is seeded and scales as documented, --arch qwen2 adds q/k/v biases, and bad shapes are refused.
#   mkmodel_test.sh POCKETLM MAKE_RANDOM_MODEL WORK_DIR
set -euo pipefail
pocketlm=$1 mk=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# The default demo model doubles as a vocabulary source (it holds tokenizer.* keys).
"$mk" "$work/vocab-src.gguf" >/dev/null
out=$("$mk" "$work/m.gguf" --vocab "$work/vocab-src.gguf" --layers 2 --embd 64 --heads 4 --kv-heads 2 --ff 96 \
  --ctx 128 --init-std 0.02 --tied --seed 7 --name "test base")
echo "$out"
# vocab 366, embd 64, 2 layers: embd 362*64 (tied) + per layer 2*64 + q 64*64 + k,v 2*64*32 + o 64*64 + 3*64*96
# + final norm 64
want=$((366 * 64 + 2 * (2 * 64 + 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 96) + 64))
grep -q "parameters: $want " <<<"$out" || fail "expected $want parameters in: $out"

info=$("$pocketlm" info -m "$work/m.gguf")
for kv in "llama.context_length.*128" "llama.attention.head_count .*4" "llama.attention.head_count_kv.*2" \
  "llama.feed_forward_length.*96" "general.name.*test base"; do
  grep -Eq "$kv" <<<"$info" || fail "pocketlm info lacks /$kv/"
done
grep -Eq "^ *output\.weight" <<<"$info" && fail "--tied model has output.weight"

text="The small model runs in a pocket, 123 times."
a=$(printf '%s' "$text" | "$pocketlm" tokenize -m "$work/vocab-src.gguf")
b=$(printf '%s' "$text" | "$pocketlm" tokenize -m "$work/m.gguf")
[[ "$a" == "$b" ]] || fail "tokenization differs: $a vs $b"

# Seeded: the same options give the same file; another seed another one.
"$mk" "$work/m2.gguf" --vocab "$work/vocab-src.gguf" --layers 2 --embd 64 --heads 4 --kv-heads 2 --ff 96 \
  --ctx 128 --init-std 0.02 --tied --seed 7 --name "test base" >/dev/null
cmp -s "$work/m.gguf" "$work/m2.gguf" || fail "same seed, different files"
"$mk" "$work/m3.gguf" --vocab "$work/vocab-src.gguf" --layers 2 --embd 64 --heads 4 --kv-heads 2 --ff 96 \
  --ctx 128 --init-std 0.02 --tied --seed 8 --name "test base" >/dev/null
cmp -s "$work/m.gguf" "$work/m3.gguf" && fail "different seeds, same file"

# The model runs (greedy, a few tokens).
"$pocketlm" run -m "$work/m.gguf" -p "The small" -n 4 --temp 0 >/dev/null || fail "pocketlm run failed"

# --arch qwen2: Qwen2's keys and q/k/v biases, and it runs.
"$mk" "$work/q.gguf" --arch qwen2 --tied >/dev/null
info=$("$pocketlm" info -m "$work/q.gguf")
for kv in "general.architecture.*qwen2" "qwen2.attention.head_count_kv" "blk.1.attn_q.bias" "blk.1.attn_v.bias"; do
  grep -Eq "$kv" <<<"$info" || fail "qwen2 model: pocketlm info lacks /$kv/"
done
"$pocketlm" run -m "$work/q.gguf" -p "The small" -n 4 --temp 0 >/dev/null || fail "pocketlm run failed on qwen2"

# Bad shapes and arguments are refused with a message.
for bad in "--arch gpt2" "--heads 5" "--embd 64 --heads 4 --kv-heads 3" "--init-std 0" "--init-std x" "--vocab $work/none.gguf" \
  "--ff 0" "--layers"; do
  # shellcheck disable=SC2086
  if "$mk" "$work/bad.gguf" $bad 2>"$work/err.txt"; then fail "accepted: $bad"; fi
  grep -q "error" "$work/err.txt" || fail "no error message for: $bad"
done
echo "mkmodel_test: all checks passed"
