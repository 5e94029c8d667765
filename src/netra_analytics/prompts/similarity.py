"""Near-duplicate prompts: MinHash over word shingles with an LSH index (datasketch).

Two prompts are near-duplicates when the estimated Jaccard similarity of their normalised word
shingles (pairs of words, plus single words for very short prompts) is at least `THRESHOLD`.
The index lives in memory and is rebuilt at start-up from `prompt_analytics` (sanitised text),
so it survives restarts without a file of its own.

Bounded: the index holds one entry per distinct normalised text (its `prompt_hash`), not per
prompt, so a question asked a thousand times costs one signature. Each entry remembers the
last ASKS_PER_TEXT asks of its text (prompt id, user, time): what `similar` answers with and
`is_repeat` looks in. Entries are kept least recently asked first and leave the index when
there are more than `max_texts` of them, or when their text has not been asked for `max_age_ms`
(measured against the newest prompt the index has seen, so replaying old traffic, or a quiet
night, does not empty it). `remove(user_id)` forgets a user's asks (a privacy deletion); a
text nobody else asked leaves the index with them.

Memory: ~4.5 KB per distinct text (measured, `bench/memory_bench.py`: the signature, and for
each of the LSH's 8 bands a key and a set), so the default 20,000 texts
(`ANALYTICS_SIMILARITY_MAX_PROMPTS`) is ~90 MB at most.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict
from collections.abc import Iterable

from datasketch import MinHash, MinHashLSH

from netra_analytics.prompts.normalise import normalise

THRESHOLD = 0.7
NUM_PERM = 64
MAX_SIMILAR = 10
ASKS_PER_TEXT = 32  # asks of one text remembered (prompt ids answered by `similar`)
DEFAULT_MAX_TEXTS = 20_000
DEFAULT_MAX_AGE_MS = 30 * 86_400_000
SWEEP_STEP = 64  # aged entries freed per add, at most (amortised: one is added per add)


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


@dataclasses.dataclass
class _Text:
    """One distinct normalised text: its signature and its most recent asks."""

    signature: MinHash
    last_ms: int  # the latest time it was asked
    asks: OrderedDict[str, tuple[str, int]]  # prompt id -> (user id, epoch ms), oldest first


class SimilarityIndex:
    def __init__(
        self, *, max_texts: int = DEFAULT_MAX_TEXTS, max_age_ms: int = DEFAULT_MAX_AGE_MS
    ) -> None:
        self.max_texts = max_texts
        self.max_age_ms = max_age_ms
        self._lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        self._texts: OrderedDict[str, _Text] = OrderedDict()  # by prompt hash, LRU first
        self._asks: dict[str, str] = {}  # prompt id -> prompt hash, for every remembered ask
        self._newest_ms = 0

    def __len__(self) -> int:
        """Distinct texts indexed."""
        return len(self._texts)

    @property
    def asks(self) -> int:
        """Asks remembered (at most ASKS_PER_TEXT per text)."""
        return len(self._asks)

    def add(
        self, prompt_id: str, user_id: str, timestamp_ms: int, prompt_hash: str, text: str
    ) -> None:
        """Index one ask of `text` (`prompt_hash`: the hash of its normal form)."""
        if prompt_id in self._asks:
            return
        entry = self._texts.pop(prompt_hash, None)
        if entry is None:
            entry = _Text(minhash(text), timestamp_ms, OrderedDict())
            self._lsh.insert(prompt_hash, entry.signature)
        self._texts[prompt_hash] = entry  # at the end: the most recently asked
        entry.last_ms = max(entry.last_ms, timestamp_ms)
        entry.asks[prompt_id] = (user_id, timestamp_ms)
        self._asks[prompt_id] = prompt_hash
        if len(entry.asks) > ASKS_PER_TEXT:
            dropped, _ = entry.asks.popitem(last=False)
            del self._asks[dropped]
        self._newest_ms = max(self._newest_ms, timestamp_ms)
        self._evict()

    def _evict(self) -> None:
        while len(self._texts) > self.max_texts:
            self._drop(next(iter(self._texts)))
        horizon = self._newest_ms - self.max_age_ms
        for _ in range(SWEEP_STEP):
            oldest = next(iter(self._texts.items()), None)
            if oldest is None or oldest[1].last_ms >= horizon:
                return
            self._drop(oldest[0])

    def _drop(self, prompt_hash: str) -> None:
        entry = self._texts.pop(prompt_hash)
        self._lsh.remove(prompt_hash)
        for prompt_id in entry.asks:
            del self._asks[prompt_id]

    def users(self) -> set[str]:
        """The people with a remembered ask."""
        return {user for entry in self._texts.values() for user, _ in entry.asks.values()}

    def remove(self, user_id: str) -> int:
        """Forget every ask of `user_id` (for a privacy deletion); a text only they asked
        leaves the index. Returns the number of asks forgotten. Costs one pass over the index
        (~0.05 s at 20,000 texts): meant for rare deletions, not the request path."""
        forgotten = 0
        for prompt_hash in list(self._texts):
            entry = self._texts[prompt_hash]
            mine = [pid for pid, (user, _) in entry.asks.items() if user == user_id]
            for prompt_id in mine:
                del entry.asks[prompt_id]
                del self._asks[prompt_id]
            forgotten += len(mine)
            if mine and not entry.asks:
                del self._texts[prompt_hash]
                self._lsh.remove(prompt_hash)
        self._evict()
        return forgotten

    def similar(self, prompt_id: str, prompt_hash: str, text: str) -> list[tuple[str, float]]:
        """Near-duplicates of a prompt (itself excluded), most similar first: the remembered
        asks of its own text (1.0) and of texts whose estimated Jaccard similarity is at
        least THRESHOLD."""
        entry = self._texts.get(prompt_hash)
        signature = entry.signature if entry is not None else minhash(text)
        found: dict[str, float] = dict.fromkeys(entry.asks if entry is not None else (), 1.0)
        for other_hash in self._lsh.query(signature):
            if other_hash == prompt_hash:
                continue
            other = self._texts[other_hash]
            jaccard = signature.jaccard(other.signature)
            if jaccard >= THRESHOLD:
                for other_id in other.asks:
                    found.setdefault(other_id, jaccard)
        found.pop(prompt_id, None)
        return sorted(found.items(), key=lambda item: (-item[1], item[0]))

    def is_repeat(
        self, user_id: str, timestamp_ms: int, matches: Iterable[tuple[str, float]]
    ) -> bool:
        """Did this user ask a near-duplicate earlier (among the remembered asks)?"""
        for other, _ in matches:
            prompt_hash = self._asks.get(other)
            if prompt_hash is None:
                continue
            user, at = self._texts[prompt_hash].asks[other]
            if user == user_id and at <= timestamp_ms:
                return True
        return False
