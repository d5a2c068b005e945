#!/usr/bin/env bash
# Loopback load test of `pocketlm serve`: N concurrent clients (the official openai npm package) send completion
# requests with mixed adapters (base, adapter a, adapter b in turn) for a fixed time; prints throughput, p50/p99
# latency and the error count, after a line saying when, at which commit and on which CPU.
# Usage: bench/server_load.sh [BUILD_DIR] [SECONDS] [CLIENTS]      (defaults: build/release 30 16)
#   PLM_BENCH_MODEL / PLM_BENCH_ADAPTER: base model and an adapter file (default: the golden llama-tiny and its
#   rank-8 adapter in ../shared/golden/models; the adapter is loaded twice, as a and as b at scale 0.5, so the
#   requests mix three adapter sets). PLM_BENCH_ARGS: extra `pocketlm serve` options (e.g. "--parallel 8").
#   The openai package is installed (npm ci) into BUILD_DIR/tests/serve/npm, as tests/serve/server_test.sh does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
seconds=${2:-30}
clients=${3:-16}
bin=$build/tools/cli/pocketlm
golden=${PLM_GOLDEN_DIR:-$root/../shared/golden}
model=${PLM_BENCH_MODEL:-$golden/models/llama-tiny.gguf}
adapter=${PLM_BENCH_ADAPTER:-$golden/models/llama-tiny.lora-r8.gguf}
npmdir=$build/tests/serve/npm
[[ -x "$bin" && -f "$model" && -f "$adapter" ]] || { echo "error: need $bin, $model and $adapter" >&2; exit 1; }
source "$root/bench/lib.sh"
# The commit of the tree; BUILD_DIR is not rebuilt here, so it must have been built from that tree.
what="$clients clients, model $(basename "$model")${PLM_BENCH_ARGS:+, serve $PLM_BENCH_ARGS}"
(cd "$root" && echo "bench/server_load.sh${*:+ $*}: $(bench_stamp "$what")")

if ! cmp -s "$root/tests/serve/client/package-lock.json" "$npmdir/package-lock.json" ||
  [[ ! -d "$npmdir/node_modules/openai" ]]; then
  rm -rf "$npmdir" && mkdir -p "$npmdir"
  cp "$root/tests/serve/client/package.json" "$root/tests/serve/client/package-lock.json" "$npmdir/"
  (cd "$npmdir" && npm ci --no-audit --no-fund --loglevel=error)
fi

log=$(mktemp)
# shellcheck disable=SC2086
"$bin" serve -m "$model" --port 0 --lora "a=$adapter" --lora "b=$adapter" --alias base ${PLM_BENCH_ARGS:-} 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 150); do
  port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9][0-9]*\).*/\1/p' "$log")
  [[ -n "$port" ]] && break
  sleep 0.2
done
[[ -n "$port" ]] || { cat "$log"; exit 1; }
head -1 "$log"

cat >"$npmdir/load.mjs" <<'JS'
import OpenAI from 'openai';
const [url, seconds, clients] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const client = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
const sets = [{ model: 'base' }, { model: 'a' }, { model: 'base', lora: [{ name: 'b', scale: 0.5 }] }];
const prompts = ['Once upon a time', 'The little dog', 'One day, a girl named Lily', 'The sun was'];
const latencies = [];
let errors = 0, tokens = 0, n = 0;
const end = Date.now() + seconds * 1000;
async function worker(w) {
  for (let i = 0; Date.now() < end; ++i) {
    const t0 = performance.now();
    try {
      const r = await client.completions.create({ ...sets[(w + i) % 3], prompt: prompts[(w + 2 * i) % 4],
        max_tokens: 32, temperature: 0.8, seed: w * 1000 + i });
      tokens += r.usage.completion_tokens;
      latencies.push(performance.now() - t0);
    } catch (e) {
      ++errors;
      if (errors <= 3) console.error(`error: ${e.status ?? ''} ${e.message}`);
    }
    ++n;
  }
}
const t0 = Date.now();
await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
const wall = (Date.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN;
console.log(`clients ${clients}, ${wall.toFixed(1)} s: ${n} requests, ${errors} errors`);
console.log(`throughput: ${(latencies.length / wall).toFixed(2)} requests/s, ${(tokens / wall).toFixed(1)} generated tokens/s`);
console.log(`latency: p50 ${pct(0.5).toFixed(0)} ms, p99 ${pct(0.99).toFixed(0)} ms (32 tokens max per request)`);
process.exit(errors === 0 ? 0 : 1);
JS
node "$npmdir/load.mjs" "http://127.0.0.1:$port/v1" "$seconds" "$clients"
