"""From the bytes a client sent to UTF-8 JSON text the decoder takes. Pure functions, no I/O.

Browsers, beacons and server-side sources send bodies that are valid in spirit but not to the
letter: compressed (`Content-Encoding: gzip` or `deflate`), in a declared legacy charset
(`charset=ISO-8859-1`), with a byte-order mark, with a byte that is not UTF-8, or with a lone
UTF-16 surrogate escape (`"\\ud83d"`, what JavaScript produces when it cuts a string inside an
emoji). None of those may cost the batch: each is repaired here, the damaged character becoming
U+FFFD, so that the events beside it are kept. What cannot be read at all (an unknown content
encoding or charset, a corrupt gzip stream) is refused as a whole with a 4xx naming the header.

A body nested too deeply for the decoder's recursion is split by `split_envelope`, which finds
the envelope's members without recursion, so only the deep event is rejected.
"""

from __future__ import annotations

import codecs
import re
import zlib

from netra_analytics.errors import BadRequest, PayloadTooLarge, UnsupportedMedia

_BOM = codecs.BOM_UTF8
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
# An escaped backslash, a valid surrogate pair, or a lone surrogate escape: matching the first
# two as wholes keeps `\\ud83d` (a backslash, then text) and real pairs untouched.
_SURROGATE_ESCAPES = re.compile(
    rb"(\\\\)|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def decompress(body: bytes, content_encoding: str, limit: int) -> bytes:
    """The body with its `Content-Encoding` undone; at most `limit` bytes once inflated.

    Takes `identity`, `gzip`/`x-gzip` and `deflate` (zlib-wrapped, or raw as some clients send
    it). Raises UnsupportedMedia (415) for any other coding, BadRequest (400) for a corrupt
    stream, PayloadTooLarge (413) when the inflated body passes `limit` (a zip bomb stops there).
    """
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, coding, limit)
    if coding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, coding, limit)
        except BadRequest:
            return _inflate(body, -zlib.MAX_WBITS, coding, limit)
    raise UnsupportedMedia(
        f"Content-Encoding {content_encoding!r} is not accepted; send gzip, deflate or none"
    )


def _inflate(body: bytes, wbits: int, coding: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise BadRequest(f"body is not valid {coding} data") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"body inflates to over {limit} bytes; the limit is {limit}")
    if not inflater.eof:
        raise BadRequest(f"body is a truncated {coding} stream")
    return out


def to_utf8(body: bytes, charset: str | None) -> bytes:
    """UTF-8 text of a body in `charset` (None: UTF-8), without a BOM and without lone surrogates.

    Bytes that are not valid in the charset, and lone UTF-16 surrogate escapes, become U+FFFD.
    Raises UnsupportedMedia (415) for a charset Python does not know.
    """
    name = (charset or "utf-8").strip().strip('"').lower()
    if name not in _UTF8_NAMES:
        try:
            codec = codecs.lookup(name)
        except LookupError:
            raise UnsupportedMedia(f"charset {charset!r} is not known; send UTF-8") from None
        body = body.decode(codec.name, errors="replace").encode()
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    try:
        body.decode()
    except UnicodeDecodeError:
        body = body.decode(errors="replace").encode()
    if _MAYBE_SURROGATE.search(body):
        body = _SURROGATE_ESCAPES.sub(_keep_or_replace, body)
    return body


def _keep_or_replace(match: re.Match[bytes]) -> bytes:
    if match.group(1) or match.group(2):
        return match.group(0)
    return b"\\ufffd"


def charset_of(content_type: str) -> str | None:
    """The `charset` parameter of a Content-Type header, or None."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip()
    return None


# --- bodies too deep to decode recursively -----------------------------------------------------

_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]', re.DOTALL)


class Envelope:
    """The members of a request body found without recursion: raw event texts and context."""

    def __init__(self, events: list[bytes], context: bytes | None) -> None:
        self.events = events
        self.context = context


def split_envelope(body: bytes) -> Envelope:
    """Find `events` (each element's bytes) and `context` in `{"events": [...], "context": {...}}`.

    For bodies the recursive decoder gave up on: walks the structural tokens once, keeping only
    a depth counter, so its cost is linear in the body whatever the nesting. Raises BadRequest
    when the body is not an object or `events` is not an array.
    """
    depth = 0
    key: bytes | None = None
    expect_key = False
    value_start = -1
    events: list[bytes] | None = None
    element_start = -1
    context: bytes | None = None
    in_events = False
    for match in _TOKENS.finditer(body):
        token, start = match.group(0), match.start()
        if depth == 0:
            if token != b"{":
                raise BadRequest("invalid request body: must be a JSON object")
            depth, expect_key = 1, True
            continue
        if depth == 1:
            if expect_key and token.startswith(b'"'):
                key = token[1:-1]
                continue
            if token == b":":
                expect_key, value_start = False, match.end()
                if key == b"events":
                    in_events = True
                continue
            if token == b",":
                expect_key, in_events = True, False
                continue
        if token in (b"{", b"["):
            depth += 1
            if in_events and depth == 2 and token == b"[":
                events, element_start = [], match.end()
            continue
        if token in (b"}", b"]"):
            depth -= 1
            if depth == 1 and in_events and events is not None:
                _add_element(events, body[element_start:start])
                in_events = False
            elif depth == 1 and key == b"context":
                context = body[value_start : match.end()].strip()
            elif depth == 0:
                break
            continue
        if token == b"," and in_events and depth == 2 and events is not None:
            _add_element(events, body[element_start:start])
            element_start = match.end()
    if events is None:
        raise BadRequest("invalid request body: events: required field is missing")
    return Envelope(events, context)


def _add_element(events: list[bytes], raw: bytes) -> None:
    if raw.strip():
        events.append(raw.strip())
