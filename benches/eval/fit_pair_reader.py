#!/usr/bin/env python3
"""Fits the pair reader: multilingual-e5-small read as a cross-encoder.

Two claims go through the encoder as one sequence (`<s> passage: A </s></s>
passage: B </s>`, each side cut at 96 tokens), so attention compares their words
directly; a logistic head on the mean-pooled last state gives the odds that
they state the same claim. Low-rank updates (rank 4, scale 2) to every dense weight
of all twelve layers and the head are trained with binary cross-entropy on the
fitting parts of the labelled dev pair sets (the same-claim model's rows and split:
a row whose first text's sha256 starts with a byte divisible by 4 is kept apart and
only measured), each set weighing the same. The result is a stancemap adapter file
(`<weight>.lora_a/.lora_b`, f16) with the head as `reader.head.weight/bias`.

    python3 -m venv /tmp/pr && /tmp/pr/bin/pip install torch transformers tokenizers scikit-learn safetensors
    /tmp/pr/bin/python benches/eval/fit_pair_reader.py models/multilingual-e5-small \
        ../shared/eval/{paws_x_en_zh_translation,paws_x_en,paws_x_zh,sts_b_en,sts_b_zh,sohu_news_zh,claim_match_en}.tsv \
        -o models/pair-reader/e5-small-claims.safetensors

Deterministic for a given torch build and thread count (seed 0, two threads).
"""
import argparse, math, os, random, sys, time

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.metrics import average_precision_score
from tokenizers import Tokenizer
from transformers import BertModel

from dev_sets import kept_apart, pair_rows

DENSE = ["attention.self.query", "attention.self.key", "attention.self.value",
         "attention.output.dense", "intermediate.dense", "output.dense"]
SIDE = 96  # longest side, in tokens, `<s>` and `</s>` included
END = 2    # `</s>`


class LowRank(torch.nn.Module):
    """`x Wᵀ + b + scale · (x Aᵀ) Bᵀ` with W, b frozen."""

    def __init__(self, dense, rank, scale, gen):
        super().__init__()
        self.dense, self.scale = dense, scale
        bound = 1.0 / math.sqrt(dense.in_features)
        self.a = torch.nn.Parameter((torch.rand(rank, dense.in_features, generator=gen) * 2 - 1) * bound)
        self.b = torch.nn.Parameter(torch.zeros(dense.out_features, rank))

    def forward(self, x):
        return self.dense(x) + self.scale * (x @ self.a.t()) @ self.b.t()


def alignment_sentences(path):
    """The language offset's parallel sentences: rows naming one are left out, as
    `stancemap eval fit-same-claim` leaves them out."""
    with open(path, encoding="utf-8") as f:
        return {t for line in f if not line.startswith("#") for t in line.rstrip("\n").split("\t") if t}


def read_set(path, tok, held_out):
    name = os.path.basename(path).rsplit(".", 1)[0]
    rows = []
    raw = [(a, b, float(l)) for a, b, l in pair_rows(path) if a not in held_out and b not in held_out]
    graded = max(l for _, _, l in raw) > 1
    five = {l for _, _, l in raw} <= {0.0, 3.0, 5.0}
    for a, b, l in raw:
        if graded and not five and 2 < l < 4:
            continue  # STS: ≥ 4 same, ≤ 2 not, between left out
        same = l >= (5 if five else 4) if graded else l >= 1
        rows.append((side(tok, a), side(tok, b), same, kept_apart(a), l))
    return name, rows


def side(tok, text):
    ids = tok.encode("passage: " + text).ids
    return ids[:SIDE - 1] + [END] if len(ids) > SIDE else ids


def pair(a, b):
    return a + [END] + b[1:]


def logits(model, head, seqs):
    n = max(len(s) for s in seqs)
    ids = torch.tensor([s + [1] * (n - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])
    h = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    m = mask.unsqueeze(-1).float()
    return head((h * m).sum(1) / m.sum(1)).squeeze(-1)


def score(model, head, rows, both_orders):
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), 32):
            b = rows[i:i + 32]
            s = logits(model, head, [pair(r[0], r[1]) for r in b])
            if both_orders:
                s = (s + logits(model, head, [pair(r[1], r[0]) for r in b])) / 2
            out += s.tolist()
    return np.array(out)


def save(lora, head, args):
    tensors = {}
    for name, m in lora.items():
        tensors[f"{name}.lora_a"] = m.a.detach().to(torch.float16).contiguous()
        tensors[f"{name}.lora_b"] = m.b.detach().to(torch.float16).contiguous()
    tensors["reader.head.weight"] = head.weight.detach().reshape(-1).contiguous()
    tensors["reader.head.bias"] = head.bias.detach().contiguous()
    meta = {"format": "stancemap-adapter-1", "reader": "stancemap-pair-reader-1",
            "encoder": os.path.basename(os.path.normpath(args.model)), "scale": f"{args.scale:g}",
            "side_tokens": str(SIDE), "trained_by": " ".join(["benches/eval/fit_pair_reader.py"] + sys.argv[1:])}
    save_file(tensors, args.output, metadata=meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("sets", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--align", default="models/align/en-zh.tsv")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--set-weight", action="append", default=[], metavar="NAME=W",
                    help="a set's weight against the others' 1 (its file name without extension)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    gen = torch.Generator().manual_seed(0)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    held_out = alignment_sentences(args.align)
    sets = dict(read_set(p, tok, held_out) for p in args.sets)
    model = BertModel.from_pretrained(args.model, add_pooling_layer=False)
    model.eval()  # no dropout: the reader is read without it
    for p in model.parameters():
        p.requires_grad = False
    lora = {}
    for i, layer in enumerate(model.encoder.layer):
        for name in DENSE:
            parent, attr = layer.get_submodule(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[1]
            wrapped = LowRank(getattr(parent, attr), args.rank, args.scale, gen)
            setattr(parent, attr, wrapped)
            lora[f"encoder.layer.{i}.{name}"] = wrapped
    head = torch.nn.Linear(model.config.hidden_size, 1)
    train = [(s, r) for s, rows in sets.items() for r in rows if not r[3]]
    count = {s: sum(1 for t in train if t[0] == s) for s in sets}
    biggest = max(count.values())
    share = {s: 1.0 for s in sets} | {n: float(w) for n, w in (x.split("=") for x in args.set_weight)}
    lora_params = [p for m in lora.values() for p in (m.a, m.b)]
    opt = torch.optim.AdamW([{"params": lora_params, "lr": args.lr},
                             {"params": head.parameters(), "lr": args.head_lr}], weight_decay=0.0)
    steps = args.epochs * math.ceil(len(train) / args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 50) * max(0.0, 1 - i / steps))
    start = time.time()
    for epoch in range(args.epochs):
        order = list(range(len(train)))
        random.shuffle(order)
        total = 0.0
        for k, i in enumerate(range(0, len(order), args.batch)):
            batch = [train[j] for j in order[i:i + args.batch]]
            seqs = [pair(r[0], r[1]) if random.random() < 0.5 else pair(r[1], r[0]) for _, r in batch]
            y = torch.tensor([float(r[2]) for _, r in batch])
            w = torch.tensor([share[s] * biggest / count[s] for s, _ in batch])
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                logits(model, head, seqs), y, reduction="none") * w / w.mean()).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            if k % 50 == 0:
                print(f"epoch {epoch + 1} step {k} loss {total / (k + 1):.4f} {time.time() - start:.0f}s",
                      file=sys.stderr, flush=True)
        save(lora, head, args)  # after every epoch, so a stopped run keeps what it learnt
    for name, rows in sets.items():
        apart = [r for r in rows if r[3]]
        same = np.array([r[2] for r in apart])
        for both in (False, True):
            s = score(model, head, apart, both)
            pred = s >= 0
            prec = (same & pred).sum() / max(pred.sum(), 1)
            rec = (same & pred).sum() / max(same.sum(), 1)
            line = f"{name} kept apart {len(apart)} orders {2 if both else 1}: AP {average_precision_score(same, s):.3f} P {prec:.3f} R {rec:.3f}"
            if name.startswith("sohu"):
                keep = np.array([r[4] in (3.0, 5.0) for r in apart])
                line += f" 5v3 AP {average_precision_score(same[keep], s[keep]):.3f}"
            print(line, flush=True)
    print(f"wrote {args.output} in {time.time() - start:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
