"""The similarity index is bounded in size and age, one entry per text, and forgets a user."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.prompts.normalise import prompt_hash
from netra_analytics.prompts.similarity import ASKS_PER_TEXT, SimilarityIndex

DAY_MS = 86_400_000
T0 = 1_764_000_000_000


def _add(index: SimilarityIndex, prompt_id: str, user: str, at: int, text: str) -> None:
    index.add(prompt_id, user, at, prompt_hash(text), text)


def _text(i: int) -> str:
    return (
        "how do I configure the billing export for my team workspace in the admin console "
        f"of our company account, number {i}"
    )


def test_the_index_keeps_at_most_max_texts_the_most_recently_asked() -> None:
    index = SimilarityIndex(max_texts=100)
    for i in range(1000):
        _add(index, f"p{i}", "u", T0 + i, f"question {i} about {i * 7919} widgets")
    assert len(index) == 100 and index.asks == 100
    # An evicted text is gone from the LSH too: asking it again finds nothing else.
    assert (
        index.similar(
            "new", prompt_hash("question 0 about 0 widgets"), "question 0 about 0 widgets"
        )
        == []
    )
    kept = "question 999 about 7911081 widgets"
    assert index.similar("again", prompt_hash(kept), kept) == [("p999", 1.0)]


def test_texts_not_asked_for_max_age_leave_the_index() -> None:
    index = SimilarityIndex(max_age_ms=DAY_MS)
    _add(index, "old", "u1", T0, _text(1))
    _add(index, "kept", "u1", T0 + DAY_MS * 3 // 2, _text(2))
    _add(index, "late", "u2", T0 + 2 * DAY_MS, "something else entirely, asked two days on")
    assert len(index) == 2  # "old" is two days old; "kept" half a day
    assert [m for m, _ in index.similar("q", prompt_hash(_text(1)), _text(1))] == ["kept"]
    _add(index, "later", "u2", T0 + 3 * DAY_MS, "and a third thing")
    assert len(index) == 2 and index.similar("q", prompt_hash(_text(2)), _text(2)) == []


def test_a_text_asked_many_times_is_one_entry_with_bounded_asks() -> None:
    index = SimilarityIndex()
    for i in range(500):
        _add(index, f"p{i}", f"u{i % 50}", T0 + i, "What is the PRICE of the pro plan?")
    assert len(index) == 1 and index.asks == ASKS_PER_TEXT
    found = index.similar("new", prompt_hash("what is the price of the pro plan"), "x")
    assert len(found) == ASKS_PER_TEXT and {score for _, score in found} == {1.0}
    assert {pid for pid, _ in found} == {f"p{i}" for i in range(500 - ASKS_PER_TEXT, 500)}


def test_near_duplicates_are_found_across_texts() -> None:
    index = SimilarityIndex()
    _add(index, "a", "u1", T0, _text(1) + " please")
    _add(index, "b", "u2", T0 + 1, _text(1) + " thanks")
    matches = index.similar("b", prompt_hash(_text(1) + " thanks"), "")
    assert [m for m, _ in matches] == ["a"]
    assert not index.is_repeat("u2", T0 + 1, matches)
    assert index.is_repeat("u1", T0 + 5, matches)


def test_remove_forgets_a_users_asks_and_the_texts_only_they_asked() -> None:
    index = SimilarityIndex()
    _add(index, "a1", "alice", T0, "shared question about exports")
    _add(index, "b1", "bob", T0 + 1, "shared question about exports")
    _add(index, "a2", "alice", T0 + 2, "alice's own question on invoices")
    assert index.remove("alice") == 2
    assert len(index) == 1 and index.asks == 1
    shared = index.similar("q", prompt_hash("shared question about exports"), "")
    assert shared == [("b1", 1.0)]
    own = "alice's own question on invoices"
    assert index.similar("q", prompt_hash(own), own) == []
    assert not index.is_repeat("alice", T0 + 10, shared)
    assert index.remove("nobody") == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 40), st.integers(0, 5), st.integers(0, 50)),
            st.tuples(st.just("remove"), st.integers(0, 5)),
        ),
        max_size=120,
    )
)
def test_the_bounds_hold_whatever_the_sequence(ops: list[tuple[object, ...]]) -> None:
    index = SimilarityIndex(max_texts=8, max_age_ms=20)
    for n, op in enumerate(ops):
        if op[0] == "add":
            _, text, user, at = op
            _add(index, f"p{n}", f"u{user}", int(str(at)), f"topic {text} question")
        else:
            index.remove(f"u{op[1]}")
        assert len(index) <= 8
        assert index.asks <= ASKS_PER_TEXT * len(index)
        texts = index._texts
        assert set(index._lsh.keys) == set(texts)  # nothing left behind in the LSH
        assert all(pid in texts[h].asks for pid, h in index._asks.items())
        assert all(e.asks for e in texts.values())  # no text without an ask
        if texts:  # the least recently asked text is within the age bound
            newest = max(e.last_ms for e in texts.values())
            assert newest - next(iter(texts.values())).last_ms <= 20
