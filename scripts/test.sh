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
if [[ $preset == aarch64 ]]; then
  # qemu emulates SVE ~10x slower than NEON. The per-target kernel tests (*TargetTest: NEON, SVE, SVE2, each
  # against the scalar reference) run on qemu's default CPU, which has SVE2; everything else runs on a CPU
  # without SVE (QEMU_CPU), where runtime dispatch picks NEON: the same code above the kernels, 10x sooner.
  ctest --preset "$preset" -R 'TargetTest\.'
  QEMU_CPU=max,sve=off ctest --preset "$preset" -E 'TargetTest\.'
  # That CPU has dotprod and i8mm, so the quantized models above ran the SDOT / SMMLA kernels (ops/quant_dot_arm.h).
  # The conformance tests once more on an Armv8.0 CPU without them: Highway's NEON kernels end to end.
  QEMU_CPU=cortex-a57 ctest --preset "$preset" -R '^golden_logits'
else
  ctest --preset "$preset"
fi
