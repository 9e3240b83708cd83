#!/usr/bin/env python3
"""Compares stance heads on a stance dev set with `stancemap eval stance`'s protocol
(README, *Stance*): per target a frame fitted on the first half of its rows (at most
300), scored on the second half, each text embedded whole as a passage. Heads: the
kernel and logistic parts of `src/stance/scorer.rs` (written again here with
scikit-learn, so the logistic figures differ a little from linfa's), their blend, an
RBF support-vector machine and a one-hidden-layer perceptron, alone and blended.

Usage (from the repository root; needs numpy and scikit-learn):
  stancemap embed ../shared/eval/nlpcc2016_stance_zh.jsonl -o /tmp/nlpcc.npy --adapter claims
  python3 benches/eval/stance_heads.py ../shared/eval/nlpcc2016_stance_zh.jsonl /tmp/nlpcc.npy
"""
import json
import sys
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

LABELS = {"favor": 0, "against": 1, "none": 2}
TEMPERATURE = 0.1
MAX_EXAMPLES = 300


def unit(x):
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1)


def kernel(x, y, z):
    """Per-label mean of exp(cos / T) to the centred examples."""
    centre = x.mean(0)
    cos = unit(z - centre) @ unit(x - centre).T
    weight = np.exp((cos - cos.max(1, keepdims=True)) / TEMPERATURE)
    p = np.zeros((len(z), 3))
    for label in range(3):
        of_label = y == label
        if of_label.any():
            p[:, label] = weight[:, of_label].mean(1)
    return p / p.sum(1, keepdims=True)


def fitted(make):
    """A scikit-learn classifier on the centred unit examples (the kernel where it
    cannot be fitted, a constant for a frame of one label)."""

    def head(x, y, z):
        p = np.zeros((len(z), 3))
        if len(set(y)) == 1:
            p[:, y[0]] = 1
            return p
        centre = x.mean(0)
        try:
            model = make().fit(unit(x - centre), y)
        except ValueError:
            return kernel(x, y, z)
        for column, label in enumerate(model.classes_):
            p[:, label] = model.predict_proba(unit(z - centre))[:, column]
        return p

    return head


def blend(*heads):
    return lambda x, y, z: sum(h(x, y, z) for h in heads) / len(heads)


logistic = fitted(lambda: LogisticRegression(C=1.0, max_iter=300))
svm = fitted(lambda: SVC(kernel="rbf", probability=True, random_state=0))
mlp = fitted(lambda: MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=500, random_state=0))
HEADS = {
    "kernel": kernel,
    "logistic": logistic,
    "blend (kernel + logistic)": blend(kernel, logistic),
    "svm": svm,
    "kernel + svm": blend(kernel, svm),
    "kernel + logistic + svm": blend(kernel, logistic, svm),
    "mlp": mlp,
    "kernel + mlp": blend(kernel, mlp),
}


def main(set_path, embeddings_path):
    rows = [json.loads(line) for line in open(set_path, encoding="utf-8")]
    emb = np.load(embeddings_path)
    gold = np.array([LABELS[r["label"]] for r in rows])
    by_target = {}
    for i, r in enumerate(rows):
        by_target.setdefault(r["target"], []).append(i)
    for name, head in HEADS.items():
        truth, guess = [], []
        for rows_of_target in by_target.values():
            half = len(rows_of_target) // 2
            train, test = rows_of_target[:half][:MAX_EXAMPLES], rows_of_target[half:]
            if train and test:
                p = head(emb[train], gold[train], emb[test])
                truth += list(gold[test])
                guess += list(p.argmax(1))
        present = sorted(set(truth))
        macro = f1_score(truth, guess, labels=present, average="macro")
        f_avg = f1_score(truth, guess, labels=[0, 1], average="macro")
        print(f"{name:26s} macro-F1 {macro:.3f}  F_avg {f_avg:.3f}")


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    main(sys.argv[1], sys.argv[2])
