"""The service's errors, and the one place they become HTTP status codes.

    NetraError
    ├── ConfigError          a setting is wrong: start-up stops, naming the variable
    ├── BadRequest           400: the body or envelope is not what the API takes
    │   ├── PayloadTooLarge  413: over the byte or event cap
    │   └── UnsupportedMedia 415: not JSON
    ├── SpoolFull            503: the durable spool is at its cap; nothing was acknowledged
    ├── WriterDown           503: the batch writer keeps crashing; nothing was acknowledged
    ├── QueryLimit           503: a report ran into its time or memory bound, or waited too long
    └── StoreError           500: ClickHouse refused a statement (the message says why)
        └── StoreUnavailable 503: ClickHouse did not answer; events wait in the spool

Per-event problems (`InvalidEvent`) are not exceptions: a batch carries valid and invalid
events side by side, so they are reported in the 202 reply, event by event.

What a reply says: an error's own message, unless its class sets `public_message`. The store's
errors do, because ClickHouse's text quotes the statement it refused: their detail goes to the
log (`app.py`), never to the client. Any other exception a route lets out is answered as
`InternalError` (500) by `app.py`, with a fixed message.
"""

from __future__ import annotations


class NetraError(Exception):
    status_code = 500
    # The message a reply carries instead of str(exc), when that may hold internals.
    public_message: str | None = None


class ConfigError(NetraError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class BadRequest(NetraError):
    status_code = 400


class PayloadTooLarge(BadRequest):
    status_code = 413


class UnsupportedMedia(BadRequest):
    status_code = 415


class SpoolFull(NetraError):
    status_code = 503


class WriterDown(NetraError):
    """Ingestion refuses events while nothing would store them (the writer keeps crashing)."""

    status_code = 503
    public_message = (
        "events cannot be stored at the moment (the batch writer is failing); "
        "nothing was accepted, send them again later"
    )

    def __init__(self, retry_after: int) -> None:
        super().__init__(self.public_message)
        self.retry_after = retry_after


class QueryLimit(NetraError):
    """A report query stopped at a bound (`store.bounded`); the message names the bound."""

    status_code = 503


class StoreError(NetraError):
    status_code = 500
    public_message = "the analytics store could not answer this request"


class StoreUnavailable(StoreError):
    status_code = 503
    public_message = "the analytics store is unavailable; try again shortly"


def public_error(exc: BaseException) -> str:
    """What a public reply (health, an error body) may say of `exc`: never its internals."""
    if isinstance(exc, NetraError) and exc.public_message is not None:
        return exc.public_message
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return type(exc).__name__
