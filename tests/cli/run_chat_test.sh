#!/usr/bin/env bash
# `pocketlm run --chat` on the shipped base model (no ../shared needed): the reply alone is printed, and it is
# the greedy reply `pocketlm eval --exact-match` computes for the same one-message chat (both render the
# model's chat template and stop at its end-of-turn token).
# usage: run_chat_test.sh POCKETLM REPO_DIR WORK_DIR
set -uo pipefail
bin=$1 repo=$2 work=$3
plm() { ${PLM_EMULATOR:-} "$bin" "$@"; }
model="$repo/models/pocketlm-base/pocketlm-base-f16.gguf"
rm -rf "$work" && mkdir -p "$work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

question="How do I list the files in a directory?"
reply=$(plm run -m "$model" --chat -p "$question" -n 12 --temp 0 2>"$work/err") || fail "run --chat: $(cat "$work/err")"
[[ "$reply" != *"$question"* ]] || fail "run --chat echoed the prompt: $reply"
[[ "$reply" != *"<|im_"* ]] || fail "run --chat printed a chat marker: $reply"
printf '{"messages": [{"role": "user", "content": "%s"}, {"role": "assistant", "content": "-"}]}\n' "$question" \
  >"$work/q.jsonl"
plm eval -m "$model" --exact-match "$work/q.jsonl" --max-tokens 12 >"$work/eval" 2>&1 || fail "eval: $(cat "$work/eval")"
want=$(sed -n 's/^miss: expected "-", got "\(.*\)"$/\1/p' "$work/eval")
got=$(printf '%s' "$reply" | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
want=$(printf '%s' "$want" | sed 's/\\n/ /g; s/^ *//; s/ *$//')
if [[ -n "$got" && "$got" == "$want" ]]; then echo "ok: run --chat reply equals eval's: '$got'"; else
  fail "run --chat gave '$got', eval --exact-match '$want'"; fi

# errors: one line, exit code 1
plm run -m "$model" -p hi --chat-template chatml >/dev/null 2>"$work/err"
[[ $? -eq 1 ]] && grep -q "^error: --chat-template needs --chat" "$work/err" || fail "--chat-template alone: $(cat "$work/err")"
plm run -m "$model" --chat -p hi --chat-template nosuch >/dev/null 2>"$work/err"
[[ $? -eq 1 ]] && grep -q "^error: " "$work/err" || fail "unknown template: $(cat "$work/err")"
((failures == 0)) && echo "run_chat_test: ok"
exit $((failures > 0))
