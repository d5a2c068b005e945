#!/usr/bin/env bash
# Trains the base model's BPE tokenizer on the corpus with Debian's spm_train, converts it to a vocabulary-only
# GGUF file for pocketlm and checks that pocketlm tokenizes held-out lines exactly as spm_encode does.
#   scripts/corpus/train_tokenizer.sh CORPUS_DIR OUT_DIR [--vocab-size 8000] [--input-mb 30] [--threads 2]
#                                     [--pocketlm BIN] [--check-lines 3000] [--seed 1]
# CORPUS_DIR holds train.jsonl and val.jsonl (scripts/corpus/build_corpus.sh). Writes OUT_DIR/tokenizer.model,
# tokenizer.vocab, tokenizer.gguf and tokenizer-check.json. Without --pocketlm the check is skipped.
#
# Choices (see spm_to_gguf.py for why pocketlm needs the first two):
#   identity normalisation, remove_extra_whitespaces=false: pocketlm, like llama.cpp, does not normalise text;
#   byte_fallback: any byte sequence is representable, nothing becomes <unk>;
#   split_digits: numbers are read digit by digit (units and arithmetic in the domain datasets);
#   allow_whitespace_only_pieces: runs of spaces (code indentation) get pieces of their own;
#   <unk>=0 <s>=1 </s>=2 as llama's, ChatML markers <|im_start|> <|im_end|> as user-defined symbols.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py=/usr/bin/python3  # Debian's python: the stdlib is all these scripts use

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
(($# >= 2)) || usage
corpus=$1 out=$2
shift 2
vocab_size=8000 input_mb=30 threads=2 pocketlm="" check_lines=3000 seed=1
while (($#)); do
  case "$1" in
    --vocab-size) vocab_size=$2; shift 2 ;;
    --input-mb) input_mb=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --pocketlm) pocketlm=$2; shift 2 ;;
    --check-lines) check_lines=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "error: unknown argument '$1'" >&2; usage ;;
  esac
done
for f in "$corpus/train.jsonl" "$corpus/val.jsonl"; do
  [[ -s "$f" ]] || { echo "error: $f is missing or empty (run scripts/corpus/build_corpus.sh first)" >&2; exit 1; }
done
command -v spm_train >/dev/null || { echo "error: spm_train not found: apt-get install sentencepiece" >&2; exit 1; }
mkdir -p "$out"

"$py" "$here/jsonl_lines.py" "$corpus/train.jsonl" "$out/spm-input.txt" --max-mb "$input_mb" --max-chars 4000
spm_train --input="$out/spm-input.txt" --model_prefix="$out/tokenizer" --model_type=bpe \
  --vocab_size="$vocab_size" --byte_fallback=true --split_digits=true --allow_whitespace_only_pieces=true \
  --normalization_rule_name=identity --remove_extra_whitespaces=false --character_coverage=0.9995 \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --user_defined_symbols='<|im_start|>,<|im_end|>' \
  --max_sentence_length=4096 --input_sentence_size=2000000 --shuffle_input_sentence=true \
  --random_seed="$seed" --num_threads="$threads" >"$out/spm_train.log" 2>&1 ||
  { tail -n 20 "$out/spm_train.log" >&2; echo "error: spm_train failed (log: $out/spm_train.log)" >&2; exit 1; }
"$py" "$here/spm_to_gguf.py" "$out/tokenizer.model" "$out/tokenizer.gguf" --name "pocketlm-base tokenizer"

if [[ -n "$pocketlm" ]]; then
  "$py" "$here/jsonl_lines.py" "$corpus/val.jsonl" "$out/check-lines.txt" --sample "$check_lines" --seed "$seed" \
    --max-chars 2000
  "$py" "$here/check_tokenizer.py" "$out/tokenizer.model" "$out/tokenizer.gguf" "$out/check-lines.txt" \
    --pocketlm "$pocketlm" --json "$out/tokenizer-check.json"
fi
