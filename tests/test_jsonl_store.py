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


def _stale_first_open(monkeypatch, stale):
    """The lock's first ``open`` returns ``stale``: the file as a run opened it just before the
    holder removed it (the race a real run hits between its open and its flock)."""
    import builtins

    import iranker.jsonl_store as store

    calls = []

    def fake_open(*args, **kwargs):
        calls.append(args)
        return stale if len(calls) == 1 else builtins.open(*args, **kwargs)

    monkeypatch.setattr(store, "open", fake_open, raising=False)
    return calls


def test_a_lock_on_a_removed_file_is_not_a_lock(tmp_path, monkeypatch):
    """A finishing run unlinks its lock file while holding it. A run that opened the old file
    and then locks it must not think it holds the lock while a newer run locks the new file."""
    path = tmp_path / "o.partial.lock"
    first = ExclusiveLock(path, "busy").__enter__()
    stale = open(path, "a+")
    path.unlink()  # the first run finishes: unlinks, then releases
    first.__exit__(None, None, None)
    newer = ExclusiveLock(path, "busy").__enter__()  # a newer run creates and locks a new file
    calls = _stale_first_open(monkeypatch, stale)
    with pytest.raises(StoreBusy):  # the stale file locks, but it is not the file at the path
        ExclusiveLock(path, "busy").__enter__()
    assert len(calls) == 2
    newer.__exit__(None, None, None)


def test_a_removed_lock_file_is_replaced_by_a_new_one(tmp_path, monkeypatch):
    path = tmp_path / "o.partial.lock"
    stale = open(path, "a+")
    path.unlink()
    calls = _stale_first_open(monkeypatch, stale)
    lock = ExclusiveLock(path, "busy").__enter__()
    assert len(calls) == 2 and path.exists()
    with pytest.raises(StoreBusy):
        ExclusiveLock(path, "busy").__enter__()
    lock.__exit__(None, None, None)
