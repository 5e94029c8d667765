"""The service's errors, and the one place they become HTTP status codes.

    NetraError
    ├── ConfigError          a setting is wrong: start-up stops, naming the variable
    ├── BadRequest           400: the body or envelope is not what the API takes
    │   ├── PayloadTooLarge  413: over the byte or event cap
    │   └── UnsupportedMedia 415: not JSON
    ├── SpoolFull            503: the durable spool is at its cap; nothing was acknowledged
    └── StoreError           ClickHouse refused a statement (the message says why)
        └── StoreUnavailable ClickHouse did not answer; events wait in the spool

Per-event problems (`InvalidEvent`) are not exceptions: a batch carries valid and invalid
events side by side, so they are reported in the 202 reply, event by event.
"""

from __future__ import annotations


class NetraError(Exception):
    status_code = 500


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


class StoreError(NetraError):
    status_code = 500


class StoreUnavailable(StoreError):
    status_code = 503
