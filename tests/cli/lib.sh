# Helpers shared by the command-line test scripts. Source it after setting bin (the pocketlm binary) and work (the
# scratch folder); the scripts count failures in `failures` and exit with it.
# PLM_EMULATOR runs the binaries of a cross build (qemu-aarch64 -L ...); empty for native builds.
plm() { ${PLM_EMULATOR:-} "$bin" "$@"; }
made() { ${PLM_EMULATOR:-} "$@" >/dev/null || { echo "FAIL: $*"; exit 1; }; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_clean_error NAME PATTERN ARGS...: exit code 1, one "error: " line on stderr matching PATTERN (an extended
# regular expression), nothing left in $work/out/.
expect_clean_error() {
  local name="$1" pattern="$2"; shift 2
  "$@" >"$work/stdout" 2>"$work/err" </dev/null
  local code=$?
  if [[ $code -ne 1 ]]; then fail "$name: exit code $code, expected 1"; cat "$work/err"; return; fi
  if [[ $(wc -l <"$work/err") -ne 1 ]] || ! grep -q '^error: ' "$work/err"; then
    fail "$name: stderr is not one error line:"; cat "$work/err"; return
  fi
  if ! grep -qE -- "$pattern" "$work/err"; then fail "$name: error does not match '$pattern': $(cat "$work/err")"; return; fi
  if [[ -n "$(ls -A "$work/out")" ]]; then fail "$name: left files behind: $(ls "$work/out")"; rm -rf "$work/out"/*; return; fi
  echo "ok: $name -> $(cat "$work/err")"
}
