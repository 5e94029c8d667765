"""Environment interpolation as Grafana's provisioning does it (values.go, os.Expand)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netra_analytics.grafana.layout import expand_env, folder_uid, interpolate

ENV = {"HOST": "ch.internal", "PORT": "8123", "EMPTY": "", "A_1": "x"}


@pytest.mark.parametrize(
    ("raw", "expected", "unset"),
    [
        ("$HOST:$PORT", "ch.internal:8123", set()),
        ("${HOST}", "ch.internal", set()),
        ("$__env{PORT}", "8123", set()),
        ("${EMPTY}x", "x", set()),
        ("$NOPE/", "/", {"NOPE"}),
        ("${NOPE}", "", {"NOPE"}),
        ("$$HOST", "$HOST", set()),  # `$$` is a literal dollar
        ("cost $$5", "cost $5", set()),
        ("$A_1.", "x.", set()),
        ("price: 5$", "price: 5$", set()),  # a trailing `$` stays
        ("a $ b", "a $ b", set()),  # so does one before a space (Go keeps it)
        ("${}x", "x", set()),  # bad syntax is dropped, as Go does
        ("$__timeFilter(ts)", "(ts)", {"__timeFilter"}),  # why rule models are not expanded
    ],
)
def test_expand_env_matches_grafana(raw: str, expected: str, unset: set[str]) -> None:
    missing: set[str] = set()
    assert expand_env(raw, ENV, missing) == expected
    assert missing == unset


def test_braced_only_leaves_alert_templating_alone() -> None:
    missing: set[str] = set()
    text = "{{ $labels.instance }} at {{ $value }} over ${HOST}"
    assert expand_env(text, ENV, missing, braced_only=True) == (
        "{{ $labels.instance }} at {{ $value }} over ch.internal"
    )


def test_file_expander_reads_a_trimmed_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("  s3cret\n")
    missing: set[str] = set()
    assert expand_env(f"$__file{{{secret}}}", ENV, missing) == "s3cret"
    assert expand_env(f"$__file{{{tmp_path / 'absent'}}}", ENV, missing) == ""
    assert missing == {f"file {tmp_path / 'absent'}"}


def test_interpolate_walks_mappings_and_lists_and_keeps_other_types() -> None:
    missing: set[str] = set()
    doc = {"url": "http://$HOST", "hosts": ["${PORT}", 3], "tls": True, "n": None}
    assert interpolate(doc, ENV, missing) == {
        "url": "http://ch.internal",
        "hosts": ["8123", 3],
        "tls": True,
        "n": None,
    }


_literal = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=8)


@given(st.lists(st.tuples(_literal, st.sampled_from(sorted(ENV))), max_size=5), _literal)
def test_literal_text_and_braced_names_expand_to_their_values(
    pieces: list[tuple[str, str]], tail: str
) -> None:
    raw = "".join(f"{text}${{{name}}}" for text, name in pieces) + tail
    expected = "".join(text + ENV[name] for text, name in pieces) + tail
    missing: set[str] = set()
    assert expand_env(raw, ENV, missing) == expected
    assert missing == set()


@given(st.text(max_size=40))
def test_doubled_dollars_are_never_expanded(text: str) -> None:
    escaped = text.replace("$", "$$")
    missing: set[str] = set()
    assert expand_env(escaped, ENV, missing) == text
    assert missing == set()


def test_folder_uid_is_a_short_slug() -> None:
    assert folder_uid("Netra Analytics") == "netra-analytics"
    assert len(folder_uid("x" * 80)) == 40
