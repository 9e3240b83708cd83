#!/usr/bin/env python3
"""Compares ways of moving Chinese vectors next to English ones (README, *Across
languages*): none, the mean offset `src/align.rs` uses, a ridge-regularised linear map
pulled towards the identity, and an orthogonal (Procrustes) map, each fitted on the
parallel sentences of models/align/en-zh.tsv alone or with the translation pairs of
paws_x_en_zh_translation.tsv outside the quarter kept apart.

Scored on that quarter's translations (mean cosine, margin over the other pairs, top-1
retrieval) and on cross-language STS pairs that are not translations (Spearman, and AP
of gold >= 4): those of benches/eval/cross_lingual_sts.py's output (two rows per STS-B
row: English text1 with Chinese text2, then the reverse) whose English and Chinese
first texts are both in the quarter kept apart.

Usage (from the repository root; needs numpy and a release build):
  python3 benches/eval/cross_lingual_sts.py ../shared/eval /tmp/sts_b_en_zh.tsv
  python3 benches/eval/alignment_map.py ../shared/eval /tmp/sts_b_en_zh.tsv
"""
import csv
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cross_lingual_sts import embed  # noqa: E402
from dev_sets import kept_apart  # noqa: E402


def tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def unit(m):
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def average_precision(score, relevant):
    hits = relevant[np.argsort(-score)]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return (precision * hits).sum() / hits.sum()


def spearman(a, b):
    return np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]


def main(eval_dir, xl_path):
    with open("models/align/en-zh.tsv", encoding="utf-8") as f:
        align = [tuple(l.rstrip("\n").split("\t")) for l in f if not l.startswith("#")]
    align = [p for p in align if len(p) == 2 and p != ("en", "zh")]
    english_aligned = {en for en, _ in align}
    translations = [(r["text1"], r["text2"]) for r in tsv(f"{eval_dir}/paws_x_en_zh_translation.tsv")
                    if r["label"] == "1" and r["text1"] not in english_aligned]
    fit = align + [p for p in translations if not kept_apart(p[0])]
    test = [p for p in translations if kept_apart(p[0])]
    both = tsv(xl_path)
    xl = [(r["text1"], r["text2"], float(r["label"]))
          for one, other in zip(both[::2], both[1::2])
          if kept_apart(one["text1"]) and kept_apart(other["text1"])
          for r in (one, other)]
    texts = sorted({t for p in fit + test for t in p} | {t for a, b, _ in xl for t in (a, b)})
    index = {t: i for i, t in enumerate(texts)}
    emb = embed(texts, adapter="claims")  # as `cluster` embeds claims
    rows = lambda ts: emb[[index[t] for t in ts]]
    chinese = lambda s: sum("\u4e00" <= c <= "\u9fff" for c in s) > 0.2 * len(s)

    def score(name, move):
        en, zh = unit(rows([e for e, _ in test])), unit(move(rows([z for _, z in test])))
        sims = en @ zh.T
        true = np.diag(sims)
        margin = true.mean() - sims[~np.eye(len(test), dtype=bool)].mean()
        top1 = (sims.argmax(0) == np.arange(len(test))).mean()
        side = lambda t: move(rows([t]))[0] if chinese(t) else rows([t])[0]
        cos = np.array([unit(side(a)) @ unit(side(b)) for a, b, _ in xl])
        gold = np.array([g for *_, g in xl])
        print(f"| {name} | {true.mean():.3f} | {margin:.3f} | {top1:.3f} | "
              f"{spearman(cos, gold):.3f} | {average_precision(cos, (gold >= 4) * 1.0):.3f} |")

    print(f"fitting pairs: {len(align)} parallel sentences, {len(fit)} with translations; "
          f"{len(test)} translations kept apart; {len(xl)} cross-language STS pairs\n")
    print("| map | translation cosine | margin | top-1 | XL STS Spearman | XL STS AP |")
    print("|---|---|---|---|---|---|")
    score("none", lambda z: z)
    for label, pairs in [("parallel sentences", align), ("+ translations", fit)]:
        en, zh = rows([e for e, _ in pairs]), rows([z for _, z in pairs])
        score(f"offset, {label}", lambda z, d=en.mean(0) - zh.mean(0): z + d)
        me, mz = en.mean(0), zh.mean(0)
        gram, cross = (zh - mz).T @ (zh - mz), (zh - mz).T @ (en - me)
        for lam in [1, 10, 100]:
            w = np.linalg.solve(gram + lam * np.eye(len(me)), cross + lam * np.eye(len(me)))
            score(f"ridge λ {lam}, {label}", lambda z, w=w: (z - mz) @ w + me)
        u, _, vt = np.linalg.svd(cross)
        score(f"Procrustes, {label}", lambda z, r=u @ vt: (z - mz) @ r + me)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
