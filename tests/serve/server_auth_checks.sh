# shellcheck shell=bash disable=SC2154  # bin comes from server_test.sh
# Sourced by server_test.sh: end-to-end checks of `pocketlm serve`'s protections with curl. API keys (every
# endpoint but /health answers 401 without the right `Authorization: Bearer KEY`), and the admin API, which loads
# only files inside --adapter-dir and is off without it. Uses server_test.sh's `bin` and `fail`, and runs in its
# work directory (base.gguf, adapter-a.gguf, adapter-b.gguf).

# Keys (one per source: --api-key, --api-key-file, POCKETLM_API_KEY) and the adapter directory: adapter-a.gguf,
# the base model (not an adapter), a link inside, and links leading out (to a real adapter, to /etc/passwd, and a
# dangling one). Sets auth_args, the first server's protection options.
make_auth_fixture() {
  key1="plm-test-key1-$RANDOM$RANDOM"
  key2="plm-test-key2-$RANDOM$RANDOM"
  key3="plm-test-key3-$RANDOM$RANDOM"
  printf '# keys of the test server\n\n%s\n' "$key2" >keys.txt
  mkdir -p adapters
  cp adapter-a.gguf adapters/
  cp base.gguf adapters/not-an-adapter.gguf
  ln -s adapter-a.gguf adapters/link-in
  ln -s ../adapter-b.gguf adapters/link-out
  ln -s /etc/passwd adapters/passwd-link
  ln -s ../no-such.gguf adapters/dangling-out
  # shellcheck disable=SC2034  # read by server_test.sh
  auth_args=(--api-key "$key1" --api-key-file keys.txt --adapter-dir adapters)
}

# http METHOD PATH AUTHORIZATION [BODY]: sets `status`; the body goes to resp.json, the headers to resp.headers.
# AUTHORIZATION is the header's whole value ("" = no header).
http() {
  local args=(-s -o resp.json -D resp.headers -w '%{http_code}' -X "$1" "http://127.0.0.1:$port$2")
  [[ -n "$3" ]] && args+=(-H "Authorization: $3")
  [[ -n "${4:-}" ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  status=$(curl "${args[@]}") || fail "curl $1 $2"
}
expect_status() {  # expect_status STATUS WHAT
  [[ "$status" == "$1" ]] || fail "$2: HTTP $status, expected $1: $(cat resp.json)"
}
error_message() {
  node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync("resp.json", "utf8")).error.message)'
}

# wait_for_port LOG PID: prints the port the server reports in LOG.
wait_for_port() {
  local p=""
  for _ in $(seq 100); do
    p=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9][0-9]*\).*/\1/p' "$1")
    [[ -n "$p" ]] && break
    kill -0 "$2" 2>/dev/null || { cat "$1" >&2; fail "the server exited at start"; }
    sleep 0.2
  done
  [[ -n "$p" ]] || { cat "$1" >&2; fail "the server did not report its port"; }
  echo "$p"
}

# The first server: keys from --api-key and --api-key-file, --adapter-dir adapters.
check_keys_and_admin() {
  grep -q "serve: API key required (2 keys)" serve.log || { cat serve.log; fail "no start-up line on the API keys"; }
  grep -qF "serve: admin API loads adapters from $(cd adapters && pwd -P)" serve.log ||
    { cat serve.log; fail "no start-up line on the adapter directory"; }
  local req
  for req in "GET /v1/models" "POST /v1/chat/completions" "POST /v1/completions" "POST /admin/adapters" \
    "DELETE /admin/adapters/a" "GET /no-such-path"; do
    http "${req% *}" "${req#* }" "" '{"model": "base", "prompt": "x", "name": "x", "path": "adapter-a.gguf"}'
    expect_status 401 "$req without a key"
    grep -q '"code":"invalid_api_key"' resp.json || fail "$req without a key: $(cat resp.json)"
    grep -qi '^WWW-Authenticate: Bearer' resp.headers || fail "$req without a key: no WWW-Authenticate header"
  done
  http GET /health ""
  expect_status 200 "/health without a key"
  http GET /v1/models "Bearer wrong-$key1"
  expect_status 401 "a wrong key"
  [[ "$(error_message)" == "invalid API key" ]] || fail "a wrong key: $(cat resp.json)"
  http GET /v1/models "Bearer ${key1}x"
  expect_status 401 "a key with a byte more"
  http GET /v1/models "Basic $(printf 'user:%s' "$key1" | base64)"
  expect_status 401 "Basic authentication"
  http POST /admin/adapters "Bearer wrong" '{"name": "x", "path": "adapter-a.gguf"}'
  expect_status 401 "admin with a wrong key"
  http GET /v1/models "Bearer $key1"
  expect_status 200 "the --api-key key"
  http GET /v1/models "bearer $key2"
  expect_status 200 "the --api-key-file key, scheme in lower case"

  # Every way out of the directory, and a missing name, get one refusal that names nothing on the server: it
  # does not tell whether the target exists (/etc/passwd does, ../no-such.gguf does not).
  local p m refusal=""
  for p in ../x ../adapter-b.gguf /etc/passwd "$PWD/adapters/adapter-a.gguf" link-out passwd-link dangling-out \
    missing.gguf sub/../adapter-a.gguf . ""; do
    http POST /admin/adapters "Bearer $key1" "{\"name\": \"x\", \"path\": \"$p\"}"
    expect_status 400 "admin load of '$p'"
    m=$(error_message)
    [[ -n "$refusal" ]] || refusal=$m
    [[ "$m" == "$refusal" ]] || fail "admin load of '$p': '$m', not the same refusal as for ../x: '$refusal'"
    ! grep -qF "$PWD" resp.json || fail "admin load of '$p': the answer names the server's directories"
  done
  [[ "$refusal" == *"inside the server's adapter directory"* ]] || fail "the refusal: $refusal"
  http GET /v1/models "Bearer $key1"
  ! grep -q '"id":"x"' resp.json || fail "a refused adapter was registered"
  # By name inside the directory, directly and through a link within it: loaded, listed, unloaded.
  for p in adapter-a.gguf link-in; do
    http POST /admin/adapters "Bearer $key1" "{\"name\": \"by-name\", \"path\": \"$p\"}"
    expect_status 200 "admin load of '$p'"
    http GET /v1/models "Bearer $key1"
    grep -q '"id":"by-name"' resp.json || fail "'$p' loaded but not listed: $(cat resp.json)"
    http DELETE /admin/adapters/by-name "Bearer $key1"
    expect_status 200 "unload of '$p'"
  done
  echo "ok   API keys and the adapter directory (curl)"
}

# After the first server stopped: no key in its log.
check_no_key_logged() {
  ! grep -qF -e "$key1" -e "$key2" serve.log || fail "the log shows an API key"
}

# A second server without --adapter-dir, its key from POCKETLM_API_KEY: the admin API answers 404 saying how to
# turn it on (after the key check, so a client without a key still gets 401).
check_admin_off() {
  POCKETLM_API_KEY=$key3 "$bin" serve -m base.gguf --port 0 --parallel 1 --ctx 64 -t 1 2>serve-off.log &
  off_pid=$!
  trap 'kill -KILL $off_pid 2>/dev/null || true' EXIT
  local port
  port=$(wait_for_port serve-off.log $off_pid)
  grep -q "serve: API key required (1 key)" serve-off.log || { cat serve-off.log; fail "second server: keys line"; }
  grep -q "serve: admin API off (no adapter directory)" serve-off.log || { cat serve-off.log; fail "no admin-off line"; }
  http POST /admin/adapters "" '{"name": "x", "path": "adapter-a.gguf"}'
  expect_status 401 "admin without a key on a server without --adapter-dir"
  http POST /admin/adapters "Bearer $key3" '{"name": "x", "path": "adapter-a.gguf"}'
  expect_status 404 "admin load without --adapter-dir"
  [[ "$(error_message)" == *"started with an adapter directory"* ]] || fail "admin off: $(cat resp.json)"
  http POST /admin/adapters "Bearer $key3" "{\"name\": \"x\", \"path\": \"$PWD/adapter-a.gguf\"}"
  expect_status 404 "admin load of an absolute path without --adapter-dir"
  http DELETE /admin/adapters/x "Bearer $key3"
  expect_status 404 "admin unload without --adapter-dir"
  http GET /v1/models "Bearer $key3"
  expect_status 200 "the POCKETLM_API_KEY key"
  kill -TERM $off_pid
  wait $off_pid || fail "the second server exited with $? after SIGTERM"
  trap - EXIT
  ! grep -qF "$key3" serve-off.log || fail "the log shows an API key"
  echo "ok   admin API off without --adapter-dir"
}

# Start-up errors, each before the model loads: an empty, comment-only or unreadable key file (named), an empty
# key, an empty POCKETLM_API_KEY, a missing adapter directory, --no-admin with --adapter-dir.
check_startup_errors() {
  : >keys-empty.txt
  printf '# no key here\n\n' >keys-comments.txt
  local f
  for f in keys-empty.txt keys-comments.txt keys-missing.txt; do
    if timeout 30 "$bin" serve -m base.gguf --port 0 --api-key-file "$f" 2>err.log; then fail "--api-key-file $f"; fi
    grep -qF "$f" err.log || fail "--api-key-file $f: the error does not name the file: $(cat err.log)"
  done
  if timeout 30 "$bin" serve -m base.gguf --port 0 --api-key "" 2>err.log; then fail "an empty --api-key"; fi
  grep -q "cannot be empty" err.log || fail "an empty --api-key: $(cat err.log)"
  if POCKETLM_API_KEY="" timeout 30 "$bin" serve -m base.gguf --port 0 2>err.log; then fail "empty POCKETLM_API_KEY"; fi
  grep -q POCKETLM_API_KEY err.log || fail "an empty POCKETLM_API_KEY: $(cat err.log)"
  if timeout 30 "$bin" serve -m base.gguf --port 0 --adapter-dir no-such-dir 2>err.log; then fail "no --adapter-dir"; fi
  grep -qF no-such-dir err.log || fail "a missing --adapter-dir: $(cat err.log)"
  if timeout 30 "$bin" serve -m base.gguf --port 0 --no-admin --adapter-dir adapters 2>err.log; then
    fail "--no-admin with --adapter-dir started"
  fi
  grep -q "contradicts --adapter-dir" err.log || fail "--no-admin with --adapter-dir: $(cat err.log)"
  echo "ok   start-up errors"
}
