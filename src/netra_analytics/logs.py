"""Structured (JSON) logs on stderr.

What is logged is chosen, never a request dump: no body, no IP address, no prompt text. Fields
passed with `extra=` become keys of the line. What a client causes is logged through
`RateLimitedLog` (once per kind and minute, one line, the count of the others on the next),
so that no client can fill the disk with our logs.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

# The id of the request being served (`request_log.RequestObserver` sets it), so that every
# line logged while it runs says which request it belongs to.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id is not None:
            line["request_id"] = request_id
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn warns once per malformed request ("Invalid HTTP request received."): a client's
    # doing, so at most once a minute per message.
    logging.getLogger("uvicorn.error").filters[:] = [RateLimitFilter()]
    # uvicorn's access log prints client addresses: it stays off (see cli.serve).
    logging.getLogger("uvicorn.access").disabled = True


class RateLimitedLog:
    """Logs each kind of event at most once per `interval` seconds, as one line; the next line
    of that kind says how many were left out meanwhile (`suppressed`). For what clients cause
    (malformed requests, timeouts, a bug that one shape of request triggers): a client that
    repeats it a thousand times a second must not write a thousand lines, nor tracebacks.

    At most `max_kinds` kinds are remembered (the least recent forgotten first), so a client
    cannot grow it either. Used from the event loop; a count lost to a race would be harmless.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 60.0,
        max_kinds: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.max_kinds = max_kinds
        self._clock = clock
        self._kinds: OrderedDict[str, list[float]] = OrderedDict()  # kind -> [at, suppressed]

    def admit(self, kind: str) -> int | None:
        """None if `kind` was let through less than `interval` seconds ago (it is counted);
        else how many of it were held back since it last was."""
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return None
        self._kinds[kind] = [now, 0]
        self._kinds.move_to_end(kind)
        while len(self._kinds) > self.max_kinds:
            self._kinds.popitem(last=False)
        return int(seen[1]) if seen is not None else 0

    def log(
        self,
        level: int,
        kind: str,
        msg: str,
        *args: object,
        extra: dict[str, object] | None = None,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log `msg` (with `exc_info`'s traceback, at most once per interval and kind) unless
        this kind was logged less than `interval` seconds ago; whether it was logged."""
        suppressed = self.admit(kind)
        if suppressed is None:
            return False
        fields = {**(extra or {}), "kind": kind, "suppressed": suppressed}
        self.logger.log(level, msg, *args, extra=fields, exc_info=exc_info)
        return True


class RateLimitFilter(logging.Filter):
    """`RateLimitedLog`'s rule as a logging filter, per message template, for warnings and
    below: for a library's per-request lines, such as uvicorn's "Invalid HTTP request
    received." for every malformed request a client sends."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self._gate = RateLimitedLog(logging.getLogger(__name__), interval=interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        suppressed = self._gate.admit(str(record.msg))
        if suppressed is None:
            return False
        record.suppressed = suppressed
        return True
