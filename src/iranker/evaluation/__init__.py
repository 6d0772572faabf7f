"""``iranker eval``: run rankers over the benchmark tasks (or a user's examples file), write
resumable predictions, metrics, a Markdown report and a bar chart.

* :mod:`.runner` — the resumable prediction loop (``predictions.jsonl``, ``run.json``) and
  the method registry (which ranker a method name builds);
* :mod:`.report` — metrics per task x method (``metrics.json``), ``report.md``, ``report.png``;
* :mod:`.command` — the ``iranker eval`` subcommand (``add_parser`` / ``run``).

Nothing here is imported by ``import iranker``; the command imports it when it runs.
"""

from __future__ import annotations

from .runner import (
    LLM_METHODS,
    METHODS,
    ROUTING_METHODS,
    EvalTask,
    PredictionStore,
    RunSettings,
    SettingsConflict,
    evaluate_methods,
    prediction_key,
)

__all__ = [
    "EvalTask",
    "LLM_METHODS",
    "METHODS",
    "PredictionStore",
    "ROUTING_METHODS",
    "RunSettings",
    "SettingsConflict",
    "evaluate_methods",
    "prediction_key",
]
