"""The normal form of a prompt, and its hash: the same question asked twice has one hash.

Case, punctuation and whitespace do not make a question different; the placeholders the
sanitiser leaves (`[EMAIL]`, ...) are kept as words, so two prompts that differ only in the
address they quote are the same question.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_PUNCTUATION = re.compile(r"[^\w\s\[\]]+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", folded)).strip()


def prompt_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()[:32]
