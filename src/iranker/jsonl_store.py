"""An append-only, crash-safe JSONL file of keyed records.

Both long-running writers use it: ``iranker rank`` (into ``OUT.partial``) and ``iranker eval``
(``predictions.jsonl``). A rerun reads what a killed run left and skips those keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable


class JSONLStore:
    """Append-only JSONL of records, keyed by ``record[key]``.

    Opening reads what is there (unless ``resume=False``, which starts the file afresh); a
    line that does not parse (a write cut by a kill) is dropped and the file rewritten without
    it, so later appends start on a clean line. Every append is flushed and fsynced, so a
    killed run loses at most the line being written.
    """

    def __init__(self, path: str | os.PathLike[str], *, key: str = "key", resume: bool = True) -> None:
        self.path = Path(path)
        self.key = key
        self.records: dict[str, dict[str, Any]] = {}
        self.dropped = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            self._load()
        self._fh = open(self.path, "a" if resume else "w", encoding="utf-8")

    def _load(self) -> None:
        data = self.path.read_bytes()
        good: list[bytes] = []
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
                key = str(rec[self.key])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                self.dropped += 1
                continue
            if key in self.records:
                continue
            self.records[key] = rec
            good.append(line)
        clean = b"".join(line + b"\n" for line in good)
        if clean != data:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(clean)
            os.replace(tmp, self.path)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Write records and push them to disk before returning."""
        lines = []
        for rec in records:
            self.records[str(rec[self.key])] = rec
            lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
        if not lines:
            return
        self._fh.write("".join(lines))
        self._fh.flush()
        try:
            os.fsync(self._fh.fileno())
        except OSError:  # pragma: no cover - e.g. a pipe or exotic filesystem
            pass

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "JSONLStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- guards shared by the two writers ------------------------------------------------------------
class StoreBusy(RuntimeError):
    """Another process holds the lock of the output being written."""


class StoreSettingsConflict(ValueError):
    """The output to resume was made with other settings (or from another input)."""


class ExclusiveLock:
    """An exclusive advisory lock on ``path`` for the length of a run (POSIX ``flock``).

    Two runs appending to one store would interleave lines and each report the other's
    results as its own; the second one is refused with ``busy_message`` instead. Where
    ``fcntl`` is missing the lock is a no-op.
    """

    def __init__(
        self, path: str | os.PathLike[str], busy_message: str, error: type[StoreBusy] = StoreBusy
    ) -> None:
        self.path = Path(path)
        self.busy_message = busy_message
        self.error = error
        self._fh: Any = None

    def __enter__(self) -> "ExclusiveLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            self._fh = open(self.path, "a+")
            return self
        for _ in range(100):
            self._fh = open(self.path, "a+")
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._fh.close()
                raise self.error(self.busy_message) from None
            # A finishing run removes its lock file while it still holds it; whoever opened that
            # file before it went now holds a lock nobody else can see. Only a lock on the file
            # that is at ``path`` right now excludes the others: check, else take the new one.
            try:
                if os.stat(self.path).st_ino == os.fstat(self._fh.fileno()).st_ino:
                    return self
            except FileNotFoundError:
                pass
            self._fh.close()
        raise self.error(self.busy_message)

    def __exit__(self, *exc: Any) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.close()  # closing releases the lock


def settings_differences(
    old: dict[str, Any], new: dict[str, Any], keys: Iterable[str] | None = None, *, prefix: str = ""
) -> list[str]:
    """``"name: the output has A, this run has B"`` for each of ``keys`` (default: all) that differs.

    The one comparison behind both refusals: ``eval`` resuming a folder and ``rank --resume``.
    """
    names = list(keys) if keys is not None else sorted(set(old) | set(new))
    return [
        f"{prefix}{k}: the output has {old.get(k)!r}, this run has {new.get(k)!r}"
        for k in names
        if old.get(k) != new.get(k)
    ]
