"""Deduplication for pocketlm's base-model corpus: exact paragraphs and near-duplicate documents, stdlib only.

Why: documentation packages repeat themselves (the same note on every page, a 1.17 copy of the Go spec next to
the current one, per-function pages next to an all-in-one page). Repeated text wastes a tiny model's capacity
and leaks validation text into training, so it is removed before the train/validation split.

- `ParagraphDedup`: a paragraph whose normalised text (lower case, whitespace collapsed) was already kept
  anywhere in the corpus is dropped. Short paragraphs ("Example:", "Returns") are exempt: they repeat naturally
  and carry the flow of the text.
- `NearDupIndex`: MinHash with one-permutation hashing (Li, Owen, Zhang, "One Permutation Hashing", NIPS 2012)
  over word 5-gram shingles, and LSH banding (Leskovec, Rajaraman, Ullman, "Mining of Massive Datasets", ch. 3):
  128 bins in 16 bands of 8 rows, so pairs above a Jaccard similarity of about 0.7 become candidates; a
  candidate whose estimated Jaccard similarity is at least `threshold` (default 0.8) counts as a duplicate.
  One hash per shingle (CRC-32) keeps it fast enough in pure Python (about 1 s per million words).
"""

import hashlib
import re
import zlib

__all__ = ["normalise", "ParagraphDedup", "NearDupIndex", "shingle_signature", "estimate_jaccard"]

_WORD = re.compile(r"\w+")
_WS = re.compile(r"\s+")

BINS = 128
BANDS = 16
ROWS = BINS // BANDS
_EMPTY = 1 << 32  # bin value of an empty bin: larger than any 25-bit value


def normalise(text):
    return _WS.sub(" ", text).strip().lower()


class ParagraphDedup:
    """Drops paragraphs seen before (exact match after `normalise`); `min_chars` exempts short ones."""

    def __init__(self, min_chars=40):
        self.min_chars = min_chars
        self.seen = set()

    def keep(self, paragraph):
        n = normalise(paragraph)
        if len(n) < self.min_chars:
            return True
        h = hashlib.blake2b(n.encode("utf-8"), digest_size=12).digest()
        if h in self.seen:
            return False
        self.seen.add(h)
        return True


def shingle_signature(text, n=5):
    """One-permutation MinHash signature (BINS values) of the word n-grams of `text`; None if it has fewer than
    2 * n words (too short for shingles to mean much; exact hashing covers such documents)."""
    words = _WORD.findall(text.lower())
    if len(words) < 2 * n:
        return None
    sig = [_EMPTY] * BINS
    seen = set()
    for i in range(len(words) - n + 1):
        s = " ".join(words[i:i + n])
        if s in seen:
            continue
        seen.add(s)
        h = zlib.crc32(s.encode("utf-8"))
        b, v = h & (BINS - 1), h >> 7
        if v < sig[b]:
            sig[b] = v
    return sig


def estimate_jaccard(a, b):
    """Share of bins, among those non-empty in either signature, where both hold the same minimum."""
    both = same = 0
    for x, y in zip(a, b):
        if x == _EMPTY and y == _EMPTY:
            continue
        both += 1
        same += x == y and x != _EMPTY
    return same / both if both else 0.0


class NearDupIndex:
    """Documents added in order; `find` returns the key of an earlier near-duplicate, or None."""

    def __init__(self, threshold=0.8):
        self.threshold = threshold
        self.bands = {}  # (band, values) -> [key, ...]
        self.sigs = {}

    def find(self, sig):
        seen = set()
        for band in range(BANDS):
            for key in self.bands.get((band, tuple(sig[band * ROWS:(band + 1) * ROWS])), ()):
                if key in seen:
                    continue
                seen.add(key)
                if estimate_jaccard(sig, self.sigs[key]) >= self.threshold:
                    return key
        return None

    def add(self, key, sig):
        self.sigs[key] = sig
        for band in range(BANDS):
            part = tuple(sig[band * ROWS:(band + 1) * ROWS])
            if all(v == _EMPTY for v in part):
                continue
            self.bands.setdefault((band, part), []).append(key)
