#!/usr/bin/env bash
# Builds pocketlm's base-model corpus from Debian documentation packages (permissive licenses only; nothing is
# downloaded from anywhere but Debian's archive).
#   scripts/corpus/build_corpus.sh OUT_DIR [--no-install] [build_corpus.py options: --max-mb 60
#                                  --val-fraction 0.02 --min-words 50 --near-dup 0.8 --only PKG,... --max-files N]
# Installs the packages of scripts/corpus/sources.tsv (through scripts/install-deps.sh --corpus) unless
# --no-install, then writes OUT_DIR/train.jsonl, val.jsonl, SOURCES.md and stats.json (see build_corpus.py).
# About 3-4 minutes on two cores for the ~30 MB of text the current sources give.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if (($# < 1)) || [[ "$1" == -* ]]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
out=$1
shift
install=1
args=()
for a in "$@"; do
  if [[ "$a" == --no-install ]]; then install=0; else args+=("$a"); fi
done
if ((install)); then
  bash "$here/../install-deps.sh" --corpus
fi
[[ -x /usr/bin/python3 ]] || { echo "error: /usr/bin/python3 is missing: apt-get install python3" >&2; exit 1; }
/usr/bin/python3 "$here/build_corpus.py" "$out" "${args[@]}"
