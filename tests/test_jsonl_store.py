"""``ExclusiveLock``: one holder at a time, even while a finishing run removes its lock file."""

from __future__ import annotations

import pytest

from iranker.jsonl_store import ExclusiveLock, StoreBusy

pytest.importorskip("fcntl")


def test_a_second_holder_is_refused(tmp_path):
    path = tmp_path / "o.partial.lock"
    with ExclusiveLock(path, "busy"):
        with pytest.raises(StoreBusy, match="busy"):
            ExclusiveLock(path, "busy").__enter__()
    with ExclusiveLock(path, "busy"):  # released on exit
        pass


def test_a_lock_on_a_removed_file_is_not_a_lock(tmp_path):
    """A run that finishes unlinks its lock file while holding it. A run that opened the old
    file must not think it holds the lock while a newer run locks the new file."""
    path = tmp_path / "o.partial.lock"
    first = ExclusiveLock(path, "busy").__enter__()
    stale = open(path, "a+")  # opened by a second run before the first removed the file
    path.unlink()  # the first run finishes: unlinks, then releases
    first.__exit__(None, None, None)
    newer = ExclusiveLock(path, "busy").__enter__()  # a third run creates and locks a new file
    import fcntl

    fcntl.flock(stale.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # the stale file is free to lock...
    with pytest.raises(StoreBusy):  # ...but ExclusiveLock checks it is the file at the path
        ExclusiveLock(path, "busy").__enter__()
    stale.close()
    newer.__exit__(None, None, None)
