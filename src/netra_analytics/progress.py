"""A progress bar for the command line tools (`demo`, `loadtest`): one line redrawn in place on
a terminal, or a line per tenth when the stream is not a terminal (a log, a CI job)."""

from __future__ import annotations

from typing import TextIO


class Progress:
    """`show(share, text)` draws `[#####.....]  42%  text`; `share` in [0, 1]."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.tty = bool(stream and stream.isatty())
        self.shown = -1.0

    def show(self, share: float, text: str, *, done_all: bool = False) -> None:
        if self.stream is None:
            return
        share = min(max(share, 0.0), 1.0)
        step = 0.01 if self.tty else 0.1
        if not done_all and share - self.shown < step:
            return
        self.shown = share
        filled = int(share * self.WIDTH)
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:4.0%}  {text}"
        end = "\n" if done_all or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()
