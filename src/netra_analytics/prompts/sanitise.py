"""Prompt sanitising: personal data and secrets become typed placeholders before anything
is spooled, cached or logged.

Patterns run in a fixed order, most specific first (a URL with credentials before an e-mail
address, a card number before a phone number), and each replaced span is not looked at again.
Card numbers must pass the Luhn check and IBANs the mod-97 check, so that order numbers and
similar look-alikes survive.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable

Check = Callable[[str], bool]


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _ip(text: str) -> bool:
    # "::" and "a::b" are valid IPv6 but show up in ARNs and C++ names: want three groups.
    # Checked first: it is cheap, and most candidates (`main.js:1:1`) fail it.
    if ":" in text and sum(1 for group in text.split(":") if group) < 3:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 9 <= digits <= 15


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _secret_token(text: str) -> bool:
    # Long tokens mixing letters and digits with high entropy; hex digests and words do not
    # qualify unless they are long and random-looking.
    has_digit = any(c.isdigit() for c in text)
    has_alpha = any(c.isalpha() for c in text)
    return has_digit and has_alpha and _entropy(text) >= 4.0


def _always(_: str) -> bool:
    return True


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def _not_uuid(text: str) -> bool:
    return _secret_token(text) and not _UUID.fullmatch(text)


_PHONE = (
    r"(?<![\w.\-/#:+])"
    r"(?:\+\d{1,3}[ -]?(?:\(\d{1,4}\)[ -]?)?\d{1,5}(?:[ -]\d{2,8}){1,4}"  # +44 20 7946 0958
    r"|\+\d{9,15}"  # +14155550132
    r"|\(\d{2,4}\)[ -]?\d{2,5}(?:[ -]\d{2,8}){0,3}"  # (415) 555-0198
    r"|\d{1,5}(?:[ -]\d{2,8}){1,4}"  # 415-555-0123, 07700 900123, 1-800-555-0199
    r"|\d{3}\.\d{3}\.\d{4})"  # 555.867.5309 (dots only in this form: else versions)
    r"(?![\w.\-])"
)

# Patterns run in this order; a pattern with a group named "v" replaces only that group.
PATTERNS: list[tuple[str, re.Pattern[str], Check]] = [
    (
        "[URL_WITH_CREDENTIALS]",
        re.compile(r"\b[a-z][a-z0-9+.-]{0,31}://[^\s/:@]{1,256}:[^\s/@]{1,256}@[^\s]+", re.I),
        _always,
    ),
    (
        "[EMAIL]",
        # RFC 5321's lengths (local part 64, label 63) bound each attempt, so that a long run
        # of word characters, dots or hyphens without an @ costs linear time, not quadratic.
        re.compile(r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[a-z]{2,24}\b", re.I),
        _always,
    ),
    (
        "[API_KEY]",
        re.compile(
            r"\b(?:sk-(?:proj-|ant-|live-)?[A-Za-z0-9_-]{16,}|sk_(?:live|test)_[A-Za-z0-9]{16,}"
            r"|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|hf_[A-Za-z0-9]{30,}"
            r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
            r"|eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,})"
        ),
        _always,
    ),
    (
        "[SECRET]",
        re.compile(
            r"\b(?:password|passwd|pwd|passphrase|api[_-]?key|secret[_-]?key|client[_-]?secret"
            r"|access[_-]?token|auth[_-]?token)(?:\s*[:=]\s*|\s+is\s+)(?P<v>[^\s,;]+)",
            re.I,
        ),
        _always,
    ),
    ("[IBAN]", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), _iban),
    ("[CARD]", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), _luhn),
    (
        "[NATIONAL_ID]",
        # US social security numbers; UK national insurance numbers
        re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
        _always,
    ),
    (
        "[IP_ADDRESS]",
        re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b", re.I),
        _ip,
    ),
    ("[PHONE]", re.compile(_PHONE), _phone),
    ("[SECRET]", re.compile(r"\b[A-Za-z0-9_\-+/]{32,}={0,2}"), _not_uuid),
]


def _replacer(placeholder: str, check: Check) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if "v" not in match.re.groupindex:
            return placeholder if check(whole) else whole
        start, end = match.span("v")
        offset = match.start()
        return whole[: start - offset] + placeholder + whole[end - offset :]

    return replace


# What each pattern (by position in PATTERNS) needs in a text before it can replace anything:
# at least this many digits (characters `\\d` matches: Unicode decimal digits, as in the
# patterns; the checks' `isdigit` adds none a pattern can match), or one of these strings.
# (0, nothing): always run. A text without what a pattern needs is left alone by it, so the
# pattern is skipped. No placeholder contains a digit, `@` or `:`, and replacing only removes
# digits, so what was missing in the text stays missing: skipping is exactly equivalent to
# running every pattern (tests/prompts/test_sanitise.py compares with `sanitise_every_pattern`).
_NEEDS: tuple[tuple[int, frozenset[str]], ...] = (
    (0, frozenset({"://"})),  # URL_WITH_CREDENTIALS
    (0, frozenset({"@"})),  # EMAIL
    (0, frozenset()),  # API_KEY: letters alone can make a key
    (0, frozenset()),  # SECRET after a keyword
    (2, frozenset()),  # IBAN: the check digits after the country code
    (13, frozenset()),  # CARD: 13 to 19 digits
    (6, frozenset()),  # NATIONAL_ID: 9 (US SSN) or 6 (UK NI number)
    (4, frozenset({":"})),  # IP_ADDRESS: a dotted quad's four numbers, or IPv6's colons
    (9, frozenset()),  # PHONE: 9 to 15 digits (`_phone`)
    (1, frozenset()),  # SECRET: a long token, kept unless it holds a digit (`_not_uuid`)
)
_ANY_DIGIT = re.compile(r"\d")
_REPLACERS = [(pattern, _replacer(placeholder, check)) for placeholder, pattern, check in PATTERNS]


def sanitise(text: str) -> str:
    """`text` with every recognised piece of personal data or secret replaced by a placeholder.

    Every pattern's attempt at a position is bounded in length, so the cost is linear in the
    text: the worst adversarial text measured (bench/security_bench.py) costs a few ms per 10 KB.
    Patterns that cannot replace anything in the text (`_NEEDS`: most want several digits) are
    skipped, so prose without digits, `@` or `:` costs two scans instead of ten, and a text
    with a digit or two (`GPT-4`) three, with the same result.
    """
    digits = _ANY_DIGIT.subn("", text)[1]  # in C; one string no longer than the text
    present = {n for n in ("://", "@", ":") if n in text}
    for (pattern, replace), (min_digits, strings) in zip(_REPLACERS, _NEEDS, strict=True):
        if (min_digits or strings) and not (
            (min_digits and digits >= min_digits) or not strings.isdisjoint(present)
        ):
            continue
        text = pattern.sub(replace, text)
    return text


def sanitise_every_pattern(text: str) -> str:
    """`sanitise` without skipping any pattern: the reference its fast path is tested against."""
    for pattern, replace in _REPLACERS:
        text = pattern.sub(replace, text)
    return text
