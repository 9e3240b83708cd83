#!/usr/bin/env python3
"""Writes one-story negatives: two sentences of one news article that share words
but neither a figure nor most of their words — the same story, most often another
point (the seeds' hardest case: "the same point" against "the same story").

English from FNC-1's article bodies, Chinese from Sohu's long documents, both dev
sets in ../shared/eval. Sentence pairs at least one sentence apart, at most two an
article in English and three in Chinese, seed 0. Articles are split by a sha256 of
the body (Sohu: of the row's first text, as the same-claim model splits its rows):
a quarter kept apart, written by language for measuring, the rest for fitting.

    python3 benches/eval/one_story_pairs.py ../shared/eval -o /tmp/one_story
    # → one_story.tsv (fitting), one_story_apart_en.tsv, one_story_apart_zh.tsv

Not every pair is another point (an article restates itself now and then), so the
label is noisy; it is a negative by construction, not by reading.
"""
import argparse, json, os, random, re

from dev_sets import kept_apart, pair_rows

STOP = set("that this with from have has were was will would their there they them said says "
           "also been more than into about which when what while after before other some such "
           "only most over under your just like being could should these those where because".split())
CJK = re.compile(r"[\u4e00-\u9fff]")


def en_sentences(text):
    parts = re.split(r'(?<=[.!?])["”’]?\s+(?=[A-Z“"])', text.replace("\n", " "))
    return [p.strip() for p in parts if 8 <= len(p.split()) <= 45]


def zh_sentences(text):
    return [p.strip() for p in re.split(r"(?<=[。！？])", text) if 12 <= len(p.strip()) <= 110]


def en_words(s):
    return {w for w in re.findall(r"[a-z]+", s.lower()) if len(w) >= 4 and w not in STOP}


def zh_bigrams(s):
    s = "".join(CJK.findall(s))
    return {s[i:i + 2] for i in range(len(s) - 1)}


def story_pairs(sentences, words, shared_at_least, most, rng):
    """Pairs of non-adjacent sentences sharing `shared_at_least` words, no number,
    and at most 35% of their words."""
    keys = [words(s) for s in sentences]
    numbers = [set(re.findall(r"\d+", s)) for s in sentences]
    found = [(i, j) for i in range(len(sentences)) for j in range(i + 2, len(sentences))
             if len(keys[i] & keys[j]) >= shared_at_least and not numbers[i] & numbers[j]
             and len(keys[i] & keys[j]) <= 0.35 * len(keys[i] | keys[j])]
    rng.shuffle(found)
    return [(sentences[i], sentences[j]) for i, j in found[:most]]


def write(path, pairs):
    seen = set()
    with open(path, "w", encoding="utf-8") as f:
        f.write("text1\ttext2\tlabel\n")
        for a, b in pairs:
            if (a, b) not in seen and "\t" not in a + b:
                seen.add((a, b))
                f.write(f"{a}\t{b}\t0\n")
    print(f"{path}: {len(seen)} pairs")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    rng = random.Random(0)
    fit, apart = [], {"en": [], "zh": []}
    with open(os.path.join(args.eval_dir, "fnc1_news_stance_en.jsonl"), encoding="utf-8") as f:
        bodies = sorted({json.loads(line)["text"] for line in f})
    for body in bodies:
        pairs = story_pairs(en_sentences(body), en_words, 2, 2, rng)
        (apart["en"] if kept_apart(body) else fit).extend(pairs)
    for row in pair_rows(os.path.join(args.eval_dir, "sohu_news_zh.tsv")):
        for text in row[:2]:
            if len(text) > 150:
                pairs = story_pairs(zh_sentences(text), zh_bigrams, 3, 3, rng)
                (apart["zh"] if kept_apart(row[0]) else fit).extend(pairs)
    os.makedirs(args.out, exist_ok=True)
    write(os.path.join(args.out, "one_story.tsv"), fit)
    for lang, pairs in apart.items():
        write(os.path.join(args.out, f"one_story_apart_{lang}.tsv"), pairs)


if __name__ == "__main__":
    main()
