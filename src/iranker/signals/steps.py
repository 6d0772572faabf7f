"""Signals for step data (``iranker data steps --signals``), from the training split only.

A model trained on signals must see at training time what it will see at test time, and no
more. So every example of the split being built gets its signals from the *training* split:
``cooccur`` from the training users' interactions with the example's own user left out (the
provider skips ``meta["user"]``), ``outcomes`` from the training queries with the example's own
query left out (same text or ``query_id``). A test user's next item or a test query's outcomes
never enter (the task builders split by user / query; ``tests/signals/test_steps.py`` checks
both leaks). ``bm25`` and ``dense`` read only the example itself.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from ..types import RankingExample
from . import PROVIDER_SCENARIOS, make_providers, parse_signal_names
from .base import attach_signals
from .recorded import signal_record
from .schema import SignalError


def attach_split_signals(
    by_task: Mapping[str, Sequence[RankingExample]],
    names: Sequence[str],
    *,
    train_by_task: Mapping[str, Sequence[RankingExample]],
    interactions: str | os.PathLike[str] | None = None,
    outcomes: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, list[RankingExample]], dict]:
    """``by_task`` with signals attached, and the ``info.json`` entry describing them.

    ``train_by_task`` is the training split of the same tasks (the split itself when building
    ``train``): the only source of ``cooccur`` / ``outcomes`` unless files are given.
    """
    names = parse_signal_names(list(names))

    for flag, value, name in (("interactions", interactions, "cooccur"), ("outcomes", outcomes, "outcomes")):
        if value and name not in names:
            raise SignalError(f"--{flag} is only read by the {name} signal; add it to --signals")
    out: dict[str, list[RankingExample]] = {}
    dense = None
    for task, examples in by_task.items():
        scenario = examples[0].scenario if examples else None
        wanted = [n for n in names if scenario in PROVIDER_SCENARIOS[n]]
        providers = make_providers(
            wanted,
            interactions=interactions if "cooccur" in wanted else None,
            outcomes=outcomes if "outcomes" in wanted else None,
            train_examples=list(train_by_task[task]) if task in train_by_task else None,
            dense=dense,
        )
        for p in providers:
            dense = getattr(p, "dense", dense)  # one encoder for every task
        out[task] = attach_signals(examples, providers)
    info = {
        "names": list(names),
        "record": signal_record(ex for exs in out.values() for ex in exs),
        "source": (
            "cooccur: "
            + ("the --interactions file" if interactions else "the training split's users")
            + ", each example's own user left out; outcomes: "
            + ("the --outcomes file" if outcomes else "the training split's queries")
            + ", each example's own query left out; bm25/dense: the example itself"
        ),
    }
    return out, info


__all__ = ["attach_split_signals"]
