"""How many torch threads a local model uses by default: the cores no other process is using.

Torch's own default is one thread per core. Beside another busy process that falls off a
cliff: on this project's 2-core machines, two torch threads ran one forward in 6.7 s against
0.46 s for one thread (``benchmarks/threads.py`` measures it). The threads meet at the end of
every operator, and whichever one shares its core with the other process keeps the rest
waiting. So the default (``default_threads``) is the number of CPUs this process may use minus
those busy over a short sample of ``/proc/stat`` when the model loads - a core counts as busy
above 25% use - and at least one. ``$IRANKER_THREADS`` or ``--threads`` override it; a process
that starts after the model loaded is not seen, which is why the README tells users on shared
machines to set ``IRANKER_THREADS=1``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable

THREADS_ENV = "IRANKER_THREADS"
#: share of a core another process must use for the core to count as busy
BUSY_SHARE = 0.25
#: how long ``busy_cpus`` watches ``/proc/stat``
SAMPLE_SECONDS = 0.2


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def read_cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``; ``None`` where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(x) for x in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - idle, total


def busy_cpus(
    sample_seconds: float = SAMPLE_SECONDS,
    read: Callable[[], tuple[float, float] | None] = read_cpu_times,
    cpus: int | None = None,
) -> float | None:
    """How many CPUs' worth of work the machine did over ``sample_seconds`` (``None`` if unknown).

    This process sleeps meanwhile, so it is the others' load.
    """
    first = read()
    if first is None:
        return None
    time.sleep(sample_seconds)
    second = read()
    if second is None:
        return None
    busy, total = second[0] - first[0], second[1] - first[1]
    if total <= 0:
        return None
    n = cpus if cpus is not None else (os.cpu_count() or 1)
    return n * busy / total


def default_threads(
    busy: float | None = None, cpus: int | None = None, sample: Callable[[], float | None] = busy_cpus
) -> int:
    """Torch threads when none are asked for: the usable CPUs not busy with other work (>= 1).

    ``busy`` (CPUs' worth of other work) is ``sample()``d from ``/proc/stat`` unless given;
    where it cannot be known the default is every usable CPU (torch's own choice).
    """
    cpus = usable_cpus() if cpus is None else cpus
    if busy is None:
        busy = sample()
    if busy is None:
        return cpus
    taken = max(0, math.ceil(busy - BUSY_SHARE))
    return max(1, min(cpus, cpus - taken))


def resolve_threads(
    threads: int | None, environ: dict[str, str] | None = None, default: Callable[[], int] = default_threads
) -> int:
    """The thread count a backend uses: ``threads``, else ``$IRANKER_THREADS``, else ``default()``."""
    env = os.environ if environ is None else environ
    if threads is None and env.get(THREADS_ENV):
        try:
            threads = int(env[THREADS_ENV])
        except ValueError as exc:
            raise ValueError(f"${THREADS_ENV} must be an integer, got {env[THREADS_ENV]!r}") from exc
    if threads is None:
        threads = default()
    if threads < 1:
        raise ValueError("threads must be >= 1")
    return int(threads)


__all__ = [
    "BUSY_SHARE",
    "THREADS_ENV",
    "busy_cpus",
    "default_threads",
    "read_cpu_times",
    "resolve_threads",
    "usable_cpus",
]
