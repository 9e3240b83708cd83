#!/usr/bin/env python3
"""Matches two claims word by word instead of as two pooled vectors (README, *Across
languages*, item 5): a BERTScore-style F1 — each token's best cosine among the other
claim's tokens, from one layer's token states, averaged both ways — against the pooled
cosine, by the AP of a pair set's same-claim rows (label >= 4 on 0-5 sets, 1 on 1/0
sets), each alone and together in one 5-fold cross-validated logistic regression.

Reads the published weights (models/multilingual-e5-small, fetched by any stancemap
command) with transformers, each text as a `passage: `, the prefix's and the special
tokens left out of the match.

Usage (from the repository root; needs torch, transformers and scikit-learn):
  python3 benches/eval/cross_lingual_sts.py ../shared/eval /tmp/sts_b_en_zh.tsv
  python3 benches/eval/token_match.py /tmp/sts_b_en_zh.tsv
"""
import os
import sys

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import cross_val_predict
from transformers import AutoModel, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dev_sets import pair_rows  # noqa: E402

MODEL = "models/multilingual-e5-small"
PREFIX = "passage: "
LAYERS = (4, 8, 11, 12)


class Reader:
    """One text's pooled unit vector and its content tokens' unit states per layer."""

    def __init__(self):
        self.tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{MODEL}/tokenizer.json")
        self.model = AutoModel.from_pretrained(MODEL).eval()
        self.prefix = len(self.tokenizer(PREFIX, add_special_tokens=False)["input_ids"])
        self.seen = {}

    def read(self, text):
        if text not in self.seen:
            enc = self.tokenizer(PREFIX + text, return_tensors="pt", truncation=True, max_length=512)
            with torch.no_grad():
                states = self.model(**enc, output_hidden_states=True).hidden_states
            last = states[-1][0].numpy()
            pooled = last.mean(0)
            content = slice(1 + self.prefix, last.shape[0] - 1)
            tokens = {layer: unit(states[layer][0].numpy()[content]) for layer in LAYERS}
            self.seen[text] = (pooled / np.linalg.norm(pooled), tokens)
        return self.seen[text]


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def token_f1(a, b):
    """BERTScore F1 of two claims' unit token states."""
    sim = a @ b.T
    recall, precision = sim.max(1).mean(), sim.max(0).mean()
    return 2 * recall * precision / (recall + precision)


def main(path):
    rows = pair_rows(path)
    labels = np.array([float(r[2]) for r in rows])
    same = labels >= (4.0 if labels.max() > 1 else 1.0)
    reader = Reader()
    sides = [(reader.read(r[0]), reader.read(r[1])) for r in rows]
    cosine = np.array([a[0] @ b[0] for a, b in sides])
    print(f"{path}: {len(rows)} pairs, {same.sum()} the same")
    print(f"pooled cosine AP {average_precision_score(same, cosine):.3f}")
    for layer in LAYERS:
        f1 = np.array([token_f1(a[1][layer], b[1][layer]) for a, b in sides])
        print(f"layer {layer}: token F1 AP {average_precision_score(same, f1):.3f}")
    last = np.array([token_f1(a[1][12], b[1][12]) for a, b in sides])
    for name, x in [("cosine", cosine[:, None]), ("token F1", last[:, None]), ("both", np.c_[cosine, last])]:
        p = cross_val_predict(LogisticRegression(C=10), x, same, cv=5, method="predict_proba")[:, 1]
        print(f"5-fold logistic regression, {name}: AP {average_precision_score(same, p):.3f}")


if __name__ == "__main__":
    torch.set_num_threads(os.cpu_count() or 1)
    main(sys.argv[1])
