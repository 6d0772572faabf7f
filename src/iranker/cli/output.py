"""Output files that are never lost or mistaken for finished ones, and output-path checks.

Results go to ``FILE.partial`` while they are produced (through ``iranker.jsonl_store``,
which owns crash-safe appends) and are renamed to ``FILE`` only when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..jsonl_store import JSONLStore
from .errors import CLIError


class AtomicJSONL:
    """Append records to ``path.partial``; ``commit()`` renames it to ``path``.

    With ``resume=True`` the records already in ``path.partial`` are kept and their ids are
    available as ``done``, so an interrupted run continues where it stopped.
    """

    def __init__(self, path: str | Path, *, resume: bool = False, key: str = "id") -> None:

        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._store = JSONLStore(self.partial, key=key, resume=resume)
        self.done: dict[str, dict] = dict(self._store.records)

    def write(self, record: dict) -> None:
        self._store.append([record])

    def commit(self) -> None:
        self._store.close()
        os.replace(self.partial, self.path)

    def close(self) -> None:
        self._store.close()


def run_files(output: str | os.PathLike[str]) -> list[Path]:
    """Every file ``iranker rank -o OUTPUT`` writes, renames or removes: ``OUTPUT``, its
    ``.partial``, the settings file ``.partial.json``, the lock ``.partial.lock`` and the
    ``.tmp`` files they are written through. None of them may be the input."""
    out = Path(output)
    partial = out.with_name(out.name + ".partial")
    sidecar = settings_file(partial)
    return [
        out,
        partial,
        sidecar,
        partial.with_name(partial.name + ".lock"),
        partial.with_name(partial.name + ".tmp"),
        sidecar.with_name(sidecar.name + ".tmp"),
    ]


def settings_file(partial: Path) -> Path:
    """``OUT.partial.json``: the settings a ``.partial`` was made with."""
    return partial.with_name(partial.name + ".json")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name one file (through symlinks and hard links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def check_writable_folder(folder: Path, flag: str, value: str) -> None:
    """Refuse an output whose folder is missing, is a file or cannot be written (read-only
    filesystem, no permission), before anything is created: one line naming the path."""
    if not folder.exists():
        raise CLIError(f"{flag} {value!r}: the folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CLIError(f"{flag} {value!r}: {str(folder)!r} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        reason = "read-only filesystem" if _read_only(folder) else "no permission to write there"
        raise CLIError(f"{flag} {value!r}: cannot write in {str(folder)!r} ({reason})")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # pragma: no cover - no statvfs (Windows)
        return False


def output_error(exc: OSError) -> OSError:
    """Mark an ``OSError`` raised while creating the output files (reported as a user error)."""
    exc.iranker_output = True  # type: ignore[attr-defined]
    return exc


__all__ = ["AtomicJSONL", "check_writable_folder", "output_error", "run_files", "same_file", "settings_file"]
