"""Whose events these are: the signed-in user's id, or the browser's anonymous id. Pure.

Every event is stored and counted under one id, the person's (`frontend_events.user_id`):

- `context.user_id` when the page knows who is signed in;
- otherwise `context.anonymous_id`, the stable id the tag gives each browser (kept like the
  session, under consent), so that visitors who have not signed in are each their own person
  for the rate limit and every distinct count, not one shared "anonymous" user.

A request carrying both is an identify: the browser's anonymous id is linked to the person
(`frontend_events.anonymous_id` keeps it on each event; `analytics.identity_links` holds the
link). Ids are trimmed of surrounding white space. An empty or blank id counts as absent;
placeholder values that a broken integration sends instead of an id (`anonymous`,
`undefined`, `null`, ...) and ids with control characters are refused with a reason, because
storing them would file many people under one id.
"""

from __future__ import annotations

import re

import msgspec

from netra_analytics.errors import BadRequest
from netra_analytics.taxonomy import Context

# Lower-cased. What JavaScript prints for missing values, and defaults seen in the wild.
PLACEHOLDER_IDS = frozenset(
    {
        "anonymous",
        "anon",
        "undefined",
        "null",
        "none",
        "nil",
        "nan",
        "unknown",
        "[object object]",
        "0",
        "-1",
        "false",
        "true",
        "user_id",
        "anonymous_id",
    }
)


# C0 controls, DEL and C1 controls: code points below 32 and from 127 to 159.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(value: str, field: str) -> str:
    text = value.strip()
    if text.lower() in PLACEHOLDER_IDS:
        raise BadRequest(
            f"context.{field}: {text!r} is a placeholder, not an id; send the real id, or omit "
            "user_id and send anonymous_id for a visitor who has not signed in"
        )
    if _CONTROL.search(text) is not None:
        raise BadRequest(f"context.{field}: control characters are not allowed in an id")
    return text


def resolve(context: Context) -> Context:
    """The context with `user_id` set to the id its events are stored under.

    Raises BadRequest (400) naming the field when neither id is usable, or one is a placeholder.
    """
    user_id = _clean(context.user_id, "user_id")
    anonymous_id = _clean(context.anonymous_id, "anonymous_id")
    session_id = _clean(context.session_id, "session_id")
    if not session_id:
        raise BadRequest("context.session_id: is blank")
    if not user_id and not anonymous_id:
        raise BadRequest(
            "context.user_id: missing or blank, and no context.anonymous_id; send the signed-in "
            "user's id, or the browser's anonymous id for a visitor who has not signed in"
        )
    if (
        user_id == context.user_id
        and anonymous_id == context.anonymous_id
        and session_id == context.session_id
        and user_id
    ):
        return context
    return msgspec.structs.replace(
        context, user_id=user_id or anonymous_id, anonymous_id=anonymous_id, session_id=session_id
    )
