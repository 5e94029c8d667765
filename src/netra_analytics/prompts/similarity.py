"""Near-duplicate prompts: MinHash over word shingles with an LSH index (datasketch).

Two prompts are near-duplicates when the estimated Jaccard similarity of their normalised word
shingles (pairs of words, plus single words for very short prompts) is at least `THRESHOLD`.
The index lives in memory and is rebuilt at start-up from `prompt_analytics` (sanitised text),
so it survives restarts without a file of its own.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable

from datasketch import MinHash, MinHashLSH

from netra_analytics.prompts.normalise import normalise

THRESHOLD = 0.7
NUM_PERM = 64
MAX_SIMILAR = 10


def shingles(text: str) -> set[bytes]:
    words = normalise(text).split()
    pairs = {f"{a} {b}".encode() for a, b in itertools.pairwise(words)}
    if len(words) < 4:
        pairs |= {w.encode() for w in words}
    return pairs


# Generating the hash permutations is most of a MinHash's cost: make them once, share them.
_SCHEME = "affine32"
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=1, scheme=_SCHEME).permutations


def minhash(text: str) -> MinHash:
    signature = MinHash(num_perm=NUM_PERM, seed=1, permutations=_PERMUTATIONS, scheme=_SCHEME)
    signature.update_batch(list(shingles(text)) or [b""])
    return signature


@dataclasses.dataclass(frozen=True)
class Known:
    user_id: str
    timestamp_ms: int
    prompt_hash: str
    signature: MinHash


class SimilarityIndex:
    def __init__(self) -> None:
        self._lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        self._known: dict[str, Known] = {}
        self._by_hash: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def add(
        self, prompt_id: str, user_id: str, timestamp_ms: int, prompt_hash: str, text: str
    ) -> None:
        if prompt_id in self._known:
            return
        signature = minhash(text)
        self._known[prompt_id] = Known(user_id, timestamp_ms, prompt_hash, signature)
        self._by_hash.setdefault(prompt_hash, set()).add(prompt_id)
        self._lsh.insert(prompt_id, signature)

    def similar(self, prompt_id: str, prompt_hash: str, text: str) -> list[tuple[str, float]]:
        """Near-duplicates of a prompt (itself excluded), most similar first."""
        signature = self._known[prompt_id].signature if prompt_id in self._known else minhash(text)
        found: dict[str, float] = {other: 1.0 for other in self._by_hash.get(prompt_hash, ())}
        for other in self._lsh.query(signature):
            if other not in found:
                jaccard = signature.jaccard(self._known[other].signature)
                if jaccard >= THRESHOLD:
                    found[other] = jaccard
        found.pop(prompt_id, None)
        return sorted(found.items(), key=lambda item: (-item[1], item[0]))

    def is_repeat(
        self, user_id: str, timestamp_ms: int, matches: Iterable[tuple[str, float]]
    ) -> bool:
        """Did this user ask a near-duplicate earlier?"""
        for other, _ in matches:
            known = self._known[other]
            if known.user_id == user_id and known.timestamp_ms <= timestamp_ms:
                return True
        return False
