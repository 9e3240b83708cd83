#!/usr/bin/env python3
"""Assembles a real-text corpus for `stancemap cluster` from the benchmark workload and
the evaluation dev splits' texts (each distinct text one article), for the end-to-end
scale run in README *Scale*. Usage: assemble.py EVAL_DIR WORKLOAD OUT.jsonl"""
import csv
import json
import sys


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


def main():
    eval_dir, workload, out = sys.argv[1:4]
    seen = set()
    with open(out, "w", encoding="utf-8") as f:
        for text in texts(eval_dir, workload):
            text = (text or "").strip()
            if len(text) < 8 or text in seen:
                continue
            seen.add(text)
            f.write(json.dumps({"id": f"r{len(seen)}", "text": text}, ensure_ascii=False) + "\n")
    print(f"{len(seen)} articles → {out}", file=sys.stderr)


main()
