"""Two interpreter settings for a process that serves until it exits (`tune_for_serving`).

Both are about the event loop's tail latency, measured on this project's 2-core machine under
a paced 10,000 events/s (issue 17; `bench/README.md`):

- **The collector.** CPython's full (generation 2) collection walks every tracked object and
  holds the interpreter lock throughout. A serving process holds some 250,000 such objects
  from its imports alone (FastAPI, pydantic, the routes and models), none of which ever
  becomes garbage; under load a worker ran a full collection every 5-10 s, each a 200-340 ms
  pause of its event loop (measured with `gc.callbacks`), and those pauses were the request
  p99. `gc.freeze()` (docs.python.org/3/library/gc.html#gc.freeze) moves what is alive once
  start-up is done into a permanent generation that collections skip: full collections then
  took 3-12 ms in the workers.
- **The switch interval.** Beside the event loop, a worker runs threads that hold the lock
  for long stretches (the prompt classifier, the writer building its inserts). Each time the
  loop gives the lock up (every system call) it waits up to the switch interval to get it
  back: 5 ms by default (docs.python.org/3/library/sys.html#sys.setswitchinterval). At 1 ms,
  paced p95 went from 49-58 ms to 40-41 ms, p99 from 100-163 to 90-137 ms (two runs each);
  the threads' own work is unchanged, only cut into shorter turns.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_SECONDS = 0.001


def tune_for_serving() -> int:
    """Freeze what start-up left alive and shorten the switch interval (see above). Call once
    start-up is done, in a process that serves until it exits; not in tests that build many
    apps in one process (what a finished app left in cycles would be kept). Returns the
    number of objects frozen."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    return gc.get_freeze_count()
