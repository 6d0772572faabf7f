"""Files that are either the old version or the complete new one, never half written.

Every writer in iranker that replaces a whole file (metrics, reports, settings, run info, step
data, caches, stores) goes through ``atomic_path``: the content is written beside the target
and renamed over it (``os.replace`` is atomic on one filesystem), so a kill or a full disk
mid-write leaves the previous file, not a truncated one that looks finished. Appending
record by record is ``iranker.jsonl_store``'s job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error it is
    renamed to ``path``, and on an error it is removed (``path`` is left as it was).

    ``suffix`` is appended to the name (``report.png.tmp``); a writer that picks its format
    from the extension can pass e.g. ``".tmp.png"`` to get ``report.tmp.png``.
    """
    target = Path(path)
    stem = (
        target.name[: -len(target.suffix)]
        if suffix.endswith(target.suffix) and target.suffix
        else target.name
    )
    tmp = target.with_name(stem + suffix)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


__all__ = ["atomic_path", "atomic_write_text"]
