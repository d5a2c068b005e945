#!/usr/bin/python3
"""Generates src/tokenizer/unicode_nfc_tables.cpp (Unicode NFC data) from the Unicode Character Database.

Usage: /usr/bin/python3 scripts/gen_unicode_nfc_tables.py [UCD_DIR] > src/tokenizer/unicode_nfc_tables.cpp
UCD_DIR defaults to /usr/share/unicode (Debian package `unicode-data`, Unicode 15).

Emits (UAX #15, https://www.unicode.org/reports/tr15/; UAX #44 for the file formats)
  - canonical combining class and NFC_Quick_Check of every code point, as sorted ranges,
  - full canonical decompositions (UnicodeData.txt field 5 without a <tag>, applied recursively), except the
    Hangul syllables, which are decomposed algorithmically (Unicode 15 section 3.12),
  - primary composites: (first, second) -> composite for every canonical decomposition of two code points whose
    composite is not Full_Composition_Exclusion (again without Hangul).

Full_Composition_Exclusion is derived as the standard defines it (CompositionExclusions.txt plus singleton and
non-starter decompositions), and NFC_Quick_Check from that (No: excluded composites; Maybe: code points that can be
the second of a primary composite). Both are checked against DerivedNormalizationProps.txt; a mismatch aborts.
"""
import os
import sys

MAX_CP = 0x110000
HANGUL_S = range(0xAC00, 0xAC00 + 11172)
HANGUL_V = range(0x1161, 0x1161 + 21)
HANGUL_T = range(0x11A8, 0x11A8 + 27)  # T index 1..27 (0x11A7 is "no trailing consonant")
QC_YES, QC_MAYBE, QC_NO = 0, 1, 2  # order shared with src/tokenizer/unicode_nfc_tables.h


def data_lines(path):
    """Yields the fields of each non-comment line of a UCD file, stripped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                yield [s.strip() for s in line.split(";")]


def cp_range(text):
    lo, _, hi = text.partition("..")
    return range(int(lo, 16), int(hi or lo, 16) + 1)


def main():
    ucd = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    ccc = [0] * MAX_CP
    decomp = {}  # canonical decomposition mapping (one level)
    first = None
    with open(os.path.join(ucd, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            cp = int(fields[0], 16)
            if fields[1].endswith(", First>"):
                first = cp
                continue
            # Ranges (CJK, Hangul, ...) have ccc 0 and no decomposition field, so their members need no entries.
            if fields[1].endswith(", Last>"):
                assert fields[3] == "0" and not fields[5], fields
                first = None
                continue
            ccc[cp] = int(fields[3])
            if fields[5] and not fields[5].startswith("<"):
                decomp[cp] = [int(x, 16) for x in fields[5].split()]

    def full_decomposition(cp):
        if cp not in decomp:
            return [cp]
        out = []
        for c in decomp[cp]:
            out.extend(full_decomposition(c))
        return out

    # Full_Composition_Exclusion (UAX #15 section 5.1, UAX #44 table 9): the listed exclusions, singletons, and
    # non-starter decompositions (the code point or the first code point of its decomposition is not a starter).
    exclusions = set()
    for fields in data_lines(os.path.join(ucd, "CompositionExclusions.txt")):
        exclusions.update(cp_range(fields[0]))
    for cp, d in decomp.items():
        if len(d) == 1 or ccc[cp] != 0 or ccc[d[0]] != 0:
            exclusions.add(cp)

    compositions = []  # (first, second, composite)
    for cp, d in sorted(decomp.items()):
        if cp not in exclusions:
            assert len(d) == 2, (hex(cp), d)
            compositions.append((d[0], d[1], cp))
    compositions.sort()
    assert len({(a, b) for a, b, _ in compositions}) == len(compositions)

    qc = bytearray(MAX_CP)
    for _, second, _ in compositions:
        qc[second] = QC_MAYBE
    for cp in list(HANGUL_V) + list(HANGUL_T):
        qc[cp] = QC_MAYBE
    for cp in exclusions:
        qc[cp] = QC_NO

    # Cross-check against the derived properties the UCD ships.
    ucd_fce = set()
    ucd_qc = bytearray(MAX_CP)
    for fields in data_lines(os.path.join(ucd, "DerivedNormalizationProps.txt")):
        if fields[1] == "Full_Composition_Exclusion":
            ucd_fce.update(cp_range(fields[0]))
        elif fields[1] == "NFC_QC":
            value = {"N": QC_NO, "M": QC_MAYBE}[fields[2]]
            for cp in cp_range(fields[0]):
                ucd_qc[cp] = value
    if ucd_fce != exclusions:
        sys.exit("Full_Composition_Exclusion mismatch: %s" % sorted(hex(c) for c in ucd_fce ^ exclusions)[:20])
    bad = [hex(cp) for cp in range(MAX_CP) if qc[cp] != ucd_qc[cp]]
    if bad:
        sys.exit("NFC_QC mismatch at %s" % bad[:20])

    ranges = []  # (first, ccc, qc) at every change
    for cp in range(MAX_CP):
        if not ranges or ranges[-1][1:] != (ccc[cp], qc[cp]):
            ranges.append((cp, ccc[cp], qc[cp]))

    decompositions = []  # (cp, offset, length)
    pool = []
    for cp in sorted(decomp):
        assert cp not in HANGUL_S
        d = full_decomposition(cp)
        assert len(d) <= 4, (hex(cp), d)  # Decomposition::length comment in unicode_nfc_tables.h
        decompositions.append((cp, len(pool), len(d)))
        pool.extend(d)
    assert len(pool) < 0x10000

    out = sys.stdout
    out.write("// clang-format off\n")
    out.write("// Generated by scripts/gen_unicode_nfc_tables.py from the Unicode Character Database\n")
    out.write("// (UnicodeData.txt, CompositionExclusions.txt, checked against DerivedNormalizationProps.txt). "
              "Do not edit;\n")
    out.write("// regenerate with: /usr/bin/python3 scripts/gen_unicode_nfc_tables.py > "
              "src/tokenizer/unicode_nfc_tables.cpp\n")
    out.write('#include "tokenizer/unicode_nfc_tables.h"\n\nnamespace pocketlm::unicode_data {\n\n')
    out.write("// (first code point, canonical combining class, NFC_Quick_Check) at every change of either; a range\n"
              "// runs to the next start.\n")
    out.write("const NfcRange kNfcRanges[] = {\n")
    for i in range(0, len(ranges), 6):
        out.write("  " + " ".join("{0x%05X, %d, %d}," % r for r in ranges[i:i + 6]) + "\n")
    out.write("};\nconst size_t kNumNfcRanges = sizeof(kNfcRanges) / sizeof(kNfcRanges[0]);\n\n")
    out.write("// Full canonical decompositions (Hangul syllables excepted), ascending by code point; each is\n"
              "// kDecompositionData[offset, offset + length).\n")
    out.write("const Decomposition kDecompositions[] = {\n")
    for i in range(0, len(decompositions), 5):
        out.write("  " + " ".join("{0x%05X, %d, %d}," % d for d in decompositions[i:i + 5]) + "\n")
    out.write("};\nconst size_t kNumDecompositions = sizeof(kDecompositions) / sizeof(kDecompositions[0]);\n")
    out.write("const uint32_t kDecompositionData[] = {\n")
    for i in range(0, len(pool), 10):
        out.write("  " + " ".join("0x%05X," % c for c in pool[i:i + 10]) + "\n")
    out.write("};\n\n")
    out.write("// Primary composites other than Hangul, ascending by (first, second).\n")
    out.write("const Composition kCompositions[] = {\n")
    for i in range(0, len(compositions), 4):
        out.write("  " + " ".join("{0x%05X, 0x%05X, 0x%05X}," % c for c in compositions[i:i + 4]) + "\n")
    out.write("};\nconst size_t kNumCompositions = sizeof(kCompositions) / sizeof(kCompositions[0]);\n\n")
    out.write("}  // namespace pocketlm::unicode_data\n")


if __name__ == "__main__":
    main()
