"""The default thread count (``iranker.llm.threads``): the README's rule, without a model.

The README says: without ``--threads`` / ``$IRANKER_THREADS`` a local model uses one thread per
core that no other process keeps busy when it loads (a core counts as busy above a quarter of
its time), and at least one; where the load cannot be read, every core.
"""

from __future__ import annotations

import pytest

from iranker.llm import threads as th


def test_idle_cores_each_get_a_thread_busy_ones_do_not():
    assert th.default_threads(busy=0.0, cpus=2) == 2
    assert th.default_threads(busy=0.2, cpus=2) == 2  # noise is not a busy core
    assert th.default_threads(busy=0.7, cpus=2) == 1  # a training run on one core
    assert th.default_threads(busy=1.0, cpus=2) == 1
    assert th.default_threads(busy=1.9, cpus=2) == 1  # never fewer than one
    assert th.default_threads(busy=3.5, cpus=8) == 4


def test_unknown_load_means_every_core():
    assert th.default_threads(cpus=4, sample=lambda: None) == 4
    assert th.default_threads(cpus=4, sample=lambda: 1.0) == 3
    assert th.busy_cpus(read=lambda: None) is None


def test_busy_cpus_is_the_busy_share_of_the_sample():
    readings = iter([(100.0, 1000.0), (150.0, 1100.0)])  # 50 of 100 jiffies busy
    assert th.busy_cpus(0.0, read=lambda: next(readings), cpus=2) == pytest.approx(1.0)


def test_read_cpu_times_parses_proc_stat_when_present():
    got = th.read_cpu_times()
    if got is None:
        pytest.skip("no /proc/stat here")
    busy, total = got
    assert 0 <= busy <= total


def test_explicit_then_environment_then_default():
    assert th.resolve_threads(3, {"IRANKER_THREADS": "1"}, default=lambda: 2) == 3
    assert th.resolve_threads(None, {"IRANKER_THREADS": "1"}, default=lambda: 2) == 1
    assert th.resolve_threads(None, {}, default=lambda: 2) == 2
    with pytest.raises(ValueError, match="IRANKER_THREADS"):
        th.resolve_threads(None, {"IRANKER_THREADS": "two"})
    with pytest.raises(ValueError, match=">= 1"):
        th.resolve_threads(0, {})
