#!/usr/bin/env bash
# pocketlm finetune end to end, as a user runs it, on a small random llama model this script makes:
#   1. a synthetic task (reverse three words) lowers the validation loss to <= 40% of its start, on an F32 base,
#      a Q4_K base and an IQ2_XS base made with an importance matrix (the adapter learns against those weights);
#   2. a run interrupted after 2 of 4 steps and resumed from its checkpoint writes the same adapter, byte for
#      byte, as an uninterrupted run;
#   3. bad data and options give one clear error line.
#   4. full fine-tuning (--full) learns, writes a model that runs, and resumes exactly;
#   6. pocketlm eval measures perplexity, exact match and KL divergence;
#   5. --export-peft writes a PEFT directory that converts back to the same adapter; --adapter-type f16 halves it.
#   7. --distill: an adapter distilled from the f32 base lowers the 4-bit base's KL to it (accuracy recovery).
# Usage: finetune_test.sh POCKETLM MAKE_RANDOM_MODEL WORKDIR   (PLM_EMULATOR: e.g. qemu-aarch64)
set -euo pipefail
bin="${PLM_EMULATOR:-} $1"
mkmodel="${PLM_EMULATOR:-} $2"
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"

# Width 256 and feed-forward 256: every matrix row is a whole number of 256-value k-quant blocks, so q4_k_m gives a
# Q4_K base; the narrow feed-forward (default 704) keeps training cheap under emulation and sanitizers.
$mkmodel base.gguf --layers 2 --embd 256 --ff 256 --seed 3 >/dev/null

# Data: "reverse: a b c ->" completes with " c b a". Plain shell so the test needs nothing else.
words=(red blue green cat dog sun moon tree)
make_data() {  # make_data FILE N SEED
  RANDOM=$3
  : >"$1"
  for ((i = 0; i < $2; i++)); do
    a=${words[RANDOM % 8]} b=${words[RANDOM % 8]} c=${words[RANDOM % 8]}
    printf '{"prompt": "reverse: %s %s %s ->", "completion": " %s %s %s"}\n' "$a" "$b" "$c" "$c" "$b" "$a" >>"$1"
  done
}
make_data train.jsonl 300 1
make_data val.jsonl 30 2

fail() { echo "FAIL: $*" >&2; exit 1; }

# Prints the validation loss before and after from the summary line.
check_learns() {  # check_learns BASE LABEL
  $bin finetune -m "$1" --data train.jsonl --val val.jsonl -o "adapter-$2.gguf" --rank 8 --lr 3e-3 --steps 30 \
    --seq-len 64 --batch-tokens 256 --seed 5 2>"log-$2.txt" || { cat "log-$2.txt"; fail "finetune on $2"; }
  line=$(grep '^done:' "log-$2.txt") || { cat "log-$2.txt"; fail "no summary line ($2)"; }
  read -r before after < <(sed -E 's/.*validation loss ([0-9.]+) -> ([0-9.]+).*/\1 \2/' <<<"$line")
  echo "$2 base: validation loss $before -> $after"
  awk -v b="$before" -v a="$after" 'BEGIN { exit !(a <= 0.4 * b) }' ||
    fail "$2: validation loss fell only from $before to $after (want <= 40%)"
  # The adapter loads and runs.
  $bin run -m "$1" --lora "adapter-$2.gguf" -p "reverse: red cat dog ->" -n 4 --temp 0 >/dev/null 2>&1 ||
    fail "the $2 adapter does not run"
}
# PLM_FINETUNE_QUICK=1 (Debug/sanitizer builds, where training runs ~50x slower) skips the learning checks and
# keeps everything else: export, resume, full fine-tuning resume, KL, errors.
quick=${PLM_FINETUNE_QUICK:-0}
[[ $quick == 1 ]] || check_learns base.gguf f32
# The short runs (--seq-len 32) check files, exact resumption and errors, not learning: a few steps of two 32-token
# sequences each (examples are cut to their first 32 tokens; most still reach into their completion).
# --export-peft writes the same adapter in PEFT's layout; converted back it generates the same text.
$bin finetune -m base.gguf --data train.jsonl -o small.gguf --rank 4 --lr 1e-2 --steps 2 --seq-len 32 \
  --batch-tokens 64 -q --export-peft peft-dir 2>/dev/null || fail "finetune --export-peft"
[[ -f peft-dir/adapter_config.json && -f peft-dir/adapter_model.safetensors ]] || fail "no PEFT files"
$bin adapter convert peft-dir back.gguf -m base.gguf >/dev/null 2>&1 || fail "converting the PEFT export back"
gen() { $bin run -m base.gguf "$@" -p "reverse: red cat dog ->" -n 6 --temp 0 2>/dev/null; }
[[ "$(gen --lora small.gguf)" != "$(gen)" ]] || fail "the adapter does not change the output (test is vacuous)"
[[ "$(gen --lora small.gguf)" == "$(gen --lora back.gguf)" ]] || fail "the PEFT round trip changed the output"
echo "export-peft: round trip generates the same text"
# --adapter-type f16 stores the same adapter in half the bytes, and it runs.
$bin finetune -m base.gguf --data train.jsonl -o small16.gguf --adapter-type f16 --rank 4 --lr 1e-2 --steps 2 \
  --seq-len 32 --batch-tokens 64 -q 2>/dev/null || fail "finetune --adapter-type f16"
s32=$(stat -c %s small.gguf) s16=$(stat -c %s small16.gguf)
awk -v a="$s16" -v b="$s32" 'BEGIN { exit !(a < 0.6 * b) }' || fail "the f16 adapter is $s16 bytes, f32 $s32"
[[ -n "$(gen --lora small16.gguf)" ]] || fail "the f16 adapter does not run"
echo "adapter-type f16: $s16 bytes (f32: $s32)"

$bin quantize base.gguf base-q4k.gguf --type q4_k_m >/dev/null 2>&1 || fail "quantize"
$bin info -m base-q4k.gguf | grep -qi 'q4_K' || fail "the quantized base has no q4_K tensors"
[[ $quick == 1 ]] || check_learns base-q4k.gguf q4_k
# QLoRA on a 2-bit lattice i-quant base: an importance matrix from the training data, IQ2_XS with it, and the adapter
# learns against those weights (its gradients flow through the same dequantized blocks as for the k-quants).
$bin calibrate -m base.gguf --data train.jsonl -o base.imatrix -c 32 --chunks 8 >/dev/null 2>&1 || fail "calibrate"
$bin quantize base.gguf base-iq2.gguf --type iq2_xs --imatrix base.imatrix >/dev/null 2>&1 || fail "quantize iq2_xs"
$bin info -m base-iq2.gguf | grep -qi 'iq2_xs' || fail "the 2-bit base has no iq2_xs tensors"
[[ $quick == 1 ]] || check_learns base-iq2.gguf iq2_xs

# Distillation (--distill): an adapter on the 4-bit base trained toward the f32 base's distributions (accuracy
# recovery) brings it closer to them on held-out text (eval --kl), full vocabulary or top-k; the log shows both parts.
kl_q4k() { $bin eval -m base-q4k.gguf "$@" --kl base.gguf --text val.jsonl --limit 5 2>/dev/null |
  sed -E 's/.* mean ([0-9.]+) nats.*/\1/'; }
if [[ $quick != 1 ]]; then
  kl_before=$(kl_q4k)
  for k in 0 8; do
    $bin finetune -m base-q4k.gguf --data train.jsonl -o "kd$k.gguf" --distill base.gguf --distill-weight 1 \
      --distill-temp 2 --distill-topk $k --rank 8 --lr 3e-3 --steps 20 --seq-len 64 --batch-tokens 256 \
      --train-on-prompt 2>"log-kd$k.txt" || { cat "log-kd$k.txt"; fail "finetune --distill (top-k $k)"; }
    grep -q 'distill KL [0-9.]*, CE [0-9.]*' "log-kd$k.txt" || { cat "log-kd$k.txt"; fail "no distill KL in the log"; }
    kl_after=$(kl_q4k --lora "kd$k.gguf")
    echo "distill top-k $k: eval --kl of the 4-bit base against the f32 base $kl_before -> $kl_after"
    awk -v b="$kl_before" -v a="$kl_after" 'BEGIN { exit !(a < 0.7 * b) }' || fail "distillation did not lower the KL"
  done
fi
# Mixed with the cross-entropy (default weight 0.5), one short step, top-k.
$bin finetune -m base.gguf --data train.jsonl -o kd-mixed.gguf --distill base-q4k.gguf --distill-topk 4 --rank 4 \
  --steps 1 --seq-len 32 --batch-tokens 32 2>log-kdm.txt || { cat log-kdm.txt; fail "finetune --distill mixed"; }
grep -q 'loss [0-9.]* (distill KL [0-9.]*, CE [0-9.]*)' log-kdm.txt || { cat log-kdm.txt; fail "mixed distill log"; }

# Resume: 4 steps straight versus 2 steps, "interrupted", then resumed.
common=(-m base.gguf --data train.jsonl -q --rank 4 --lr 1e-3 --steps 4 --seq-len 32 --batch-tokens 64 --seed 9
  --dropout 0.1)
$bin finetune "${common[@]}" -o straight.gguf 2>/dev/null || fail "straight run"
$bin finetune "${common[@]}" -o partial.gguf --checkpoint ck.gguf --stop-after 2 2>/dev/null || fail "interrupted run"
$bin finetune "${common[@]}" -o resumed.gguf --resume ck.gguf 2>/dev/null || fail "resumed run"
cmp -s straight.gguf resumed.gguf || fail "the resumed run's adapter differs from the uninterrupted run's"
cmp -s straight.gguf partial.gguf && fail "the interrupted run already equals the full run (test is vacuous)"
echo "resume: identical adapter after 2 + 2 steps"
$bin finetune "${common[@]/--rank/--alpha}" -o x.gguf --resume ck.gguf 2>err.txt && fail "resume with other settings"
grep -q 'other settings' err.txt || { cat err.txt; fail "resume mismatch message"; }

# pocketlm eval: the adapter lowers the validation perplexity; exact match and KL print their summary lines.
ppl() { $bin eval -m base.gguf "$@" --perplexity val.jsonl | sed -E 's/^perplexity ([0-9.]+).*/\1/'; }
if [[ $quick != 1 ]]; then
  p_base=$(ppl) p_lora=$(ppl --lora adapter-f32.gguf)
  echo "eval: validation perplexity $p_base without the adapter, $p_lora with it"
  awk -v b="$p_base" -v a="$p_lora" 'BEGIN { exit !(a < b / 4) }' || fail "eval: the adapter does not lower perplexity"
fi
$bin eval -m base.gguf --lora small.gguf --exact-match val.jsonl --max-tokens 12 --limit 5 2>/dev/null |
  grep -qE '^exact match [0-5]/5 = ' || fail "eval --exact-match summary"
$bin eval -m base-q4k.gguf --kl base.gguf --text train.jsonl --limit 3 | grep -qE '^KL divergence .* mean 0\.[0-9]*[1-9]' ||
  fail "eval --kl: the 4-bit base should differ a little from the f32 base"
$bin eval -m base.gguf --kl base.gguf --text train.jsonl --limit 3 | grep -qE 'mean 0\.000000 nats/token.*agreement 100' ||
  fail "eval --kl of a model against itself must be 0"

# Full fine-tuning writes a whole model that learns the task too and runs; resume is exact there as well.
if [[ $quick != 1 ]]; then
  $bin finetune -m base.gguf --data train.jsonl --val val.jsonl -o full.gguf --full --lr 1e-3 --steps 20 --seq-len 64 \
    --batch-tokens 256 2>log-full.txt || { cat log-full.txt; fail "full fine-tuning"; }
  read -r before after < <(grep '^done:' log-full.txt | sed -E 's/.*validation loss ([0-9.]+) -> ([0-9.]+).*/\1 \2/')
  echo "full fine-tuning: validation loss $before -> $after"
  awk -v b="$before" -v a="$after" 'BEGIN { exit !(a <= 0.4 * b) }' || fail "full fine-tuning did not learn"
  $bin run -m full.gguf -p "reverse: red cat dog ->" -n 4 --temp 0 >/dev/null 2>&1 || fail "the full model does not run"
fi
full=(-m base.gguf --data train.jsonl -q --full --lr 1e-3 --steps 2 --seq-len 32 --batch-tokens 64)
$bin finetune "${full[@]}" -o f-straight.gguf 2>/dev/null || fail "full straight run"
$bin finetune "${full[@]}" -o f-part.gguf --checkpoint fck.gguf --stop-after 1 2>/dev/null || fail "full interrupted"
$bin finetune "${full[@]}" -o f-resumed.gguf --resume fck.gguf 2>/dev/null || fail "full resumed"
cmp -s f-straight.gguf f-resumed.gguf || fail "full fine-tuning: the resumed model differs"

# An adapter records its base's lineage: it runs on any quantization of that base and is refused, with a clear
# message, on another model of the same shape (the fully fine-tuned one: its norm weights moved).
$bin run -m base-q4k.gguf --lora small16.gguf -p "reverse:" -n 1 >/dev/null 2>&1 ||
  fail "an adapter trained on base.gguf is refused on base.gguf's q4_k_m quantization"
if msg=$($bin run -m f-straight.gguf --lora small16.gguf -p "reverse:" -n 1 2>&1); then
  fail "an adapter trained on base.gguf runs on another model of the same shape"
fi
grep -q "was trained on another model" <<<"$msg" || fail "unclear lineage error: $msg"

# Errors: one line each, naming the problem.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if $bin finetune "$@" 2>err.txt >/dev/null; then fail "finetune $* succeeded"; fi
  [[ $(wc -l <err.txt) -eq 1 ]] || { cat err.txt; fail "more than one error line for: $*"; }
  grep -q -- "$pattern" err.txt || { cat err.txt; fail "expected '$pattern' for: $*"; }
}
{ head -n 3 train.jsonl; echo '{"prompt": 5}'; } >bad.jsonl
expect_error 'bad.jsonl:4:' -m base.gguf --data bad.jsonl -o o.gguf --strict --steps 1
expect_error 'unknown LoRA target' -m base.gguf --data train.jsonl -o o.gguf --targets q,z --steps 1
expect_error 'missing.jsonl' -m base.gguf --data missing.jsonl -o o.gguf --steps 1
expect_error 'schedule' -m base.gguf --data train.jsonl -o o.gguf --schedule wavy --steps 1
expect_error 'applies to LoRA' -m base.gguf --data train.jsonl -o o.gguf --full --adapter-type f16 --steps 1
expect_error 'loading the teacher missing.gguf' -m base.gguf --data train.jsonl -o o.gguf --distill missing.gguf
expect_error 'distill-topk must be in 0..' -m base.gguf --data train.jsonl -o o.gguf --distill base-q4k.gguf \
  --distill-topk 100000
[[ ! -e o.gguf ]] || fail "a failed run left an output file"
echo "finetune end to end: OK"
