#!/usr/bin/env bash
# pocketlm serve end to end with the official `openai` npm client (tests/serve/client/test.mjs): a random llama
# model and two random adapters made here (so the test needs no download besides the npm package),
# a server on a free loopback port, the client's checks, then SIGTERM and a clean exit. The server runs with API
# keys and an adapter directory; server_auth_checks.sh checks those protections with curl, a second server without
# --adapter-dir, and start-up errors.
# Usage: server_test.sh POCKETLM MAKE_RANDOM_MODEL MAKE_RANDOM_LORA WORKDIR NPM_DIR
#   NPM_DIR caches the client package (npm ci from tests/serve/client/package-lock.json) between runs.
# Exit 77 (skipped) when node, npm or curl is missing or the package cannot be installed (no network).
set -euo pipefail
bin=$1
mkmodel=$2
mklora=$3
work=$4
npmdir=$5
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=tests/serve/server_auth_checks.sh
source "$here/server_auth_checks.sh"  # sets auth_args and key2 (make_auth_fixture)
unset POCKETLM_API_KEY  # the servers' keys come from their options only

if ! command -v node >/dev/null || ! command -v npm >/dev/null || ! command -v curl >/dev/null; then
  echo "SKIP: node, npm and curl are needed"
  exit 77
fi
if ! cmp -s "$here/client/package-lock.json" "$npmdir/package-lock.json" || [[ ! -d "$npmdir/node_modules/openai" ]]
then
  rm -rf "$npmdir" && mkdir -p "$npmdir"
  cp "$here/client/package.json" "$here/client/package-lock.json" "$npmdir/"
  if ! (cd "$npmdir" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
    cat "$npmdir/npm.log" >&2
    rm -rf "$npmdir"
    echo "SKIP: npm ci failed (no network?)"
    exit 77
  fi
fi
# Node resolves `import 'openai'` from the script's own directory, so the script runs from the cache.
cp "$here/client/test.mjs" "$npmdir/test.mjs"

rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$mkmodel" base.gguf --layers 2 --embd 128 --seed 3 >/dev/null
# Two adapters of the base with different random factors: the client checks that each changes the replies and
# that a batch mixing them answers each request as it is answered alone, which needs no trained adapter.
"$mklora" base.gguf adapter-a.gguf --rank 4 --seed 5 >/dev/null
"$mklora" base.gguf adapter-b.gguf --rank 4 --seed 6 >/dev/null
make_auth_fixture  # keys, and the adapter directory "adapters"

# The random model has no chat template in its metadata and its vocabulary lacks ChatML's markers: the server
# falls back to ChatML with the markers spelled as text (as llama-server does) and says so at start-up.
"$bin" serve -m base.gguf --port 0 --lora "a=adapter-a.gguf" --lora "b=adapter-b.gguf" \
  --parallel 4 --ctx 512 --max-tokens 256 -t 2 "${auth_args[@]}" 2>serve.log &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9][0-9]*\).*/\1/p' serve.log)
  [[ -n "$port" ]] && break
  kill -0 $pid 2>/dev/null || { cat serve.log; fail "the server exited at start"; }
  sleep 0.2
done
[[ -n "$port" ]] || { cat serve.log; fail "the server did not report its port"; }
grep -q "chat template chatml (the model has no tokenizer.chat_template.*tokenized as plain text" serve.log ||
  { cat serve.log; fail "no start-up note on the chat template fallback"; }

check_keys_and_admin

# Admin loads name files inside the adapter directory: an adapter made for another base goes there too.
mismatched=""
[[ -n "${PLM_GOLDEN_DIR:-}" && -f "$PLM_GOLDEN_DIR/models/qwen2-tiny.lora-r4.gguf" ]] &&
  cp "$PLM_GOLDEN_DIR/models/qwen2-tiny.lora-r4.gguf" adapters/mismatched.gguf && mismatched=mismatched.gguf
PLM_BASE_URL="http://127.0.0.1:$port/v1" PLM_BASE_ID=base PLM_ADAPTERS=a,b PLM_POCKETLM="$bin" PLM_API_KEY="$key2" \
  PLM_MODEL="$work/base.gguf" PLM_ADAPTER_PATH="$work/adapter-a.gguf" PLM_ADAPTER_FILE=adapter-a.gguf \
  PLM_NOT_ADAPTER_FILE=not-an-adapter.gguf PLM_MISMATCHED_ADAPTER_FILE="$mismatched" \
  node "$npmdir/test.mjs" || { tail -20 serve.log; fail "the openai client test"; }

# SIGTERM: stop accepting, finish, exit 0.
kill -TERM $pid
status=0
for _ in $(seq 100); do
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -0 $pid 2>/dev/null && { cat serve.log; fail "the server did not exit within 10 s of SIGTERM"; }
wait $pid || status=$?
trap - EXIT
[[ $status -eq 0 ]] || { cat serve.log; fail "the server exited with $status after SIGTERM"; }
grep -q "serve: stopped" serve.log || { cat serve.log; fail "no clean-shutdown message"; }
check_no_key_logged
check_admin_off
check_startup_errors
echo "pocketlm serve with the openai client: OK"
