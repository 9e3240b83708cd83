#!/usr/bin/env python3
"""Builds cross-language paraphrase pairs from the eval data's PAWS-X dev rows.

paws_x_zh.tsv is a translation of paws_x_en.tsv, row for row (same order, same
labels). Row i gives two pairs across languages with row i's label: English
text1 against Chinese text2, and Chinese text1 against English text2 — a
paraphrase told in the other language (label 1), or the other language's
version of a sentence with its names or roles swapped (label 0, a hard
negative). A row is written only when its English and its Chinese row fall in
the same part (the quarter kept apart, chosen by the sha256 of text1, or the
rest), so a text kept apart in one set is never trained on through another.

Usage (from the repository root):
  python3 benches/eval/paws_x_cross.py ../shared/eval /tmp/paws_x_cross.tsv
"""
import sys

from dev_sets import kept_apart, pair_rows


def main(eval_dir, out_path):
    en, zh = pair_rows(f"{eval_dir}/paws_x_en.tsv"), pair_rows(f"{eval_dir}/paws_x_zh.tsv")
    if len(en) != len(zh) or any(e[2] != z[2] for e, z in zip(en, zh)):
        sys.exit("paws_x_en.tsv and paws_x_zh.tsv are not aligned row for row")
    rows = [(e, z) for e, z in zip(en, zh) if kept_apart(e[0]) == kept_apart(z[0])]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("text1\ttext2\tlabel\n")
        for e, z in rows:
            f.write(f"{e[0]}\t{z[1]}\t{e[2]}\n{z[0]}\t{e[1]}\t{e[2]}\n")
    apart = sum(kept_apart(e[0]) for e, _ in rows)
    print(f"{len(rows)} of {len(en)} rows in one part ({apart} kept apart): "
          f"{2 * len(rows)} pairs → {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:3])
