#!/usr/bin/env python3
"""Writes cross-article restatements: two headlines of different articles that state
the same point (the seeds' missing case: one point told by several articles in their
own words), from FNC-1 (a dev set in ../shared/eval).

FNC-1 pairs headlines with article bodies that agree with, dispute or discuss them.
Two headlines that one body agrees with (both `favor`) restate the same claim: label 1.
With `--contradictions`, a headline the body agrees with and one it disputes (`favor`
against `against`: "ISIS beheads Rehana" / "Rehana is alive") are written as label 0,
one story and opposite claims.

Stories (headlines joined through the bodies they were paired with) are split by a
sha256 of their first body, so no headline is on both sides: a quarter kept apart for
measuring, the rest for fitting. At most 12 pairs a story, seed 0, so the few stories
with dozens of headlines do not make the set.

    python3 benches/eval/restated_pairs.py ../shared/eval -o /tmp/restated [--contradictions] \
        [--one-story /tmp/one_story]
    # → restated.tsv (fitting), restated_apart_en.tsv, and with --one-story
    #   story_apart_en.tsv: the restatements kept apart against one_story_pairs.py's
    #   English negatives kept apart (one point across articles, or another point of
    #   one story: the seeds' distinction, measured with both labels)

Agreeing with one body is not always stating one point (a headline may add a detail
the other lacks), so the label is by construction, not by reading.
"""
import argparse, collections, itertools, json, os, random

from dev_sets import kept_apart

MOST_A_STORY = 12


def stories(rows):
    """Bodies joined when they share a headline: each story's bodies, first body first."""
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for r in rows:
        parent[root(("h", r["target"]))] = root(("b", r["text"]))
    grouped = collections.defaultdict(set)
    for r in rows:
        grouped[root(("b", r["text"]))].add(r["text"])
    return [sorted(bodies) for bodies in grouped.values()]


def story_pairs(bodies, labels, contradictions, rng):
    """Labelled headline pairs of one story, at most MOST_A_STORY of each label."""
    same, opposite = set(), set()
    for body in bodies:
        agree, dispute = sorted(labels[body]["favor"]), sorted(labels[body]["against"])
        same.update(itertools.combinations(agree, 2))
        if contradictions:
            opposite.update(tuple(sorted(p)) for p in itertools.product(agree, dispute))
    picked = []
    for pairs, label in ((same, 1), (opposite, 0)):
        pairs = sorted(p for p in pairs if p[0].strip().lower() != p[1].strip().lower())
        rng.shuffle(pairs)
        picked += [(a, b, label) for a, b in pairs[:MOST_A_STORY]]
    return picked


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("text1\ttext2\tlabel\n")
        for a, b, label in rows:
            f.write(f"{a}\t{b}\t{label}\n")
    positives = sum(label for *_, label in rows)
    print(f"{path}: {len(rows)} pairs, {positives} restatements")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--contradictions", action="store_true",
                    help="also write agreeing against disputed headlines as label 0")
    ap.add_argument("--one-story", metavar="DIR",
                    help="one_story_pairs.py's output: also write story_apart_en.tsv")
    args = ap.parse_args()
    with open(os.path.join(args.eval_dir, "fnc1_news_stance_en.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if "\t" not in r["target"] and "\n" not in r["target"]]
    labels = collections.defaultdict(lambda: collections.defaultdict(set))
    for r in rows:
        labels[r["text"]][r["label"]].add(r["target"].strip())
    rng = random.Random(0)
    fit, apart = [], []
    for bodies in sorted(stories(rows)):
        pairs = story_pairs(bodies, labels, args.contradictions, rng)
        (apart if kept_apart(bodies[0]) else fit).extend(pairs)
    os.makedirs(args.out, exist_ok=True)
    write(os.path.join(args.out, "restated.tsv"), fit)
    write(os.path.join(args.out, "restated_apart_en.tsv"), apart)
    if args.one_story:
        with open(os.path.join(args.one_story, "one_story_apart_en.tsv"), encoding="utf-8") as f:
            negatives = [line.rstrip("\n").split("\t") for line in f][1:]
        story = apart + [(a, b, int(label)) for a, b, label in negatives]
        write(os.path.join(args.out, "story_apart_en.tsv"), story)


if __name__ == "__main__":
    main()
