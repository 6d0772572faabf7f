"""Where a generated answer ends: every backend that decodes itself stops at the same place."""

from __future__ import annotations

from ..parsing import ANSWER_CLOSE

#: Generation also stops once this string is produced: the answer is complete, and every
#: token after it would be wasted decode time (the dominant cost on CPU).
STOP_STRINGS = (ANSWER_CLOSE,)


def first_stop(text: str) -> int | None:
    """Index just past the first stop string in ``text``, or ``None``."""
    best: int | None = None
    for stop in STOP_STRINGS:
        i = text.find(stop)
        if i >= 0 and (best is None or i + len(stop) < best):
            best = i + len(stop)
    return best
