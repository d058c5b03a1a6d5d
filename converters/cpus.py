"""How many CPUs are idle: whether a conversion may add threads (the CRC-32 of the input, the writing of
the output) without slowing itself and others on a busy machine (measured: on 2 CPUs at load 7-9 each
added thread cost 10-15% of the conversion's time)."""
from __future__ import annotations

import os


def available() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def spare() -> int:
    """CPUs idle beside this process's own (its CPUs less the 1-minute load average, at least 1, rounded
    down; 0 where the system does not say): how many threads a conversion may add."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0
    return max(0, int(available() - max(load, 1.0)))
