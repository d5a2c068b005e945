#!/usr/bin/env bash
# Sets up (Debian packages), builds and runs the test suite.
#   scripts/test.sh              release build, all tests (the README's test command)
#   scripts/test.sh debug-asan   the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/test.sh aarch64      AArch64 cross build, tests under qemu-aarch64
# Golden conformance tests need ../shared/golden beside the checkout; without it they report "skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
case "$preset" in
  aarch64) bash scripts/install-deps.sh --cross ;;
  release|debug-asan) bash scripts/install-deps.sh ;;
  *) echo "usage: $0 [release|debug-asan|aarch64]" >&2; exit 2 ;;
esac
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset"
