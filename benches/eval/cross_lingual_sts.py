#!/usr/bin/env python3
"""Builds a cross-lingual STS dev set from the eval data's STS-B dev pairs.

sts_b_zh.tsv is a Chinese translation of sts_b_en.tsv's rows, in another order.
Each Chinese row is matched to its English row by embedding (both sentences,
the Chinese side moved by the mean English-minus-Chinese difference); a match
must be clear (score >= 0.88, ahead of the runner-up by 0.01, gold scores within
1). Each matched row gives two pairs across languages, English text1 against
Chinese text2 and the reverse, with the English gold score. With --same-part,
only rows whose English and Chinese rows fall in the same part (the quarter
`eval` keeps apart by the sha256 of text1, or the rest) are written: a set to
train on that never reaches a text kept apart through its translation.

Usage (from the repository root; needs numpy):
  python3 benches/eval/cross_lingual_sts.py ../shared/eval /tmp/sts_b_en_zh.tsv [--same-part]
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from dev_sets import kept_apart, pair_rows


def embed(texts, adapter="none"):
    """Passage vectors of `texts` from the release build, with `adapter` merged in."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.npy")
        with open(src, "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n")
        subprocess.run(["target/release/stancemap", "embed", src, "-o", out,
                        "--adapter", adapter], check=True)
        return np.load(out)


def main(eval_dir, out_path, same_part=False):
    en, zh = pair_rows(f"{eval_dir}/sts_b_en.tsv"), pair_rows(f"{eval_dir}/sts_b_zh.tsv")
    texts = sorted({t for r in en + zh for t in r[:2]})
    index = {t: i for i, t in enumerate(texts)}
    emb = embed(texts)
    rows = lambda rs, k: emb[[index[r[k]] for r in rs]]
    a1, a2, b1, b2 = rows(en, 0), rows(en, 1), rows(zh, 0), rows(zh, 1)
    offset = np.concatenate([a1, a2]).mean(0) - np.concatenate([b1, b2]).mean(0)
    moved = lambda m: (m + offset) / np.linalg.norm(m + offset, axis=1, keepdims=True)
    score = (moved(b1) @ a1.T + moved(b2) @ a2.T) / 2
    best, top = score.argmax(1), np.sort(score, 1)
    gold_en = np.array([float(r[2]) for r in en])
    gold_zh = np.array([float(r[2]) for r in zh])
    clear = (top[:, -1] >= 0.88) & (top[:, -1] - top[:, -2] >= 0.01)
    clear &= np.abs(gold_en[best] - gold_zh) <= 1
    if same_part:
        clear &= np.array([kept_apart(en[b][0]) == kept_apart(z[0]) for b, z in zip(best, zh)])
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("text1\ttext2\tlabel\n")
        for i in np.flatnonzero(clear):
            e, z, gold = en[best[i]], zh[i], en[best[i]][2]
            f.write(f"{e[0]}\t{z[1]}\t{gold}\n{z[0]}\t{e[1]}\t{gold}\n")
    print(f"{clear.sum()} of {len(zh)} Chinese rows matched: {2 * clear.sum()} pairs → {out_path}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--same-part"]):
        sys.exit(__doc__)
    main(*sys.argv[1:3], same_part=sys.argv[3:] == ["--same-part"])
