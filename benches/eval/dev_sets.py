"""The dev sets as `stancemap eval` reads them: a pair set's rows, and which part a
row falls in.

The same-claim model and the adapter are fitted on three quarters of each set and
measured on the quarter kept apart: a row whose first text's sha256 starts with a
byte divisible by 4 (src/same_claim/fit.rs, `in_calibration_part`).
"""
import csv
import hashlib


def pair_rows(path):
    """A pair set's rows (`text1 text2 label`, as strings), its header left out."""
    with open(path, encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]


def kept_apart(text):
    """Whether a row whose first text is `text` is in the quarter kept apart."""
    return hashlib.sha256(text.encode("utf-8")).digest()[0] % 4 == 0
