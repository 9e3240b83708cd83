"""Which part of a dev set a row falls in, as `stancemap eval` decides it.

The same-claim model and the adapter are fitted on three quarters of each set and
measured on the quarter kept apart: a row whose first text's sha256 starts with a
byte divisible by 4 (src/same_claim/fit.rs, `in_calibration_part`).
"""
import hashlib


def kept_apart(text):
    """Whether a row whose first text is `text` is in the quarter kept apart."""
    return hashlib.sha256(text.encode("utf-8")).digest()[0] % 4 == 0
