"""Which signals a trained model was trained with, and the refusal to rank without them.

A model trained with ``signals: bm25 2/20, ...`` in its candidate segments has learned to
lean on them; shown prompts without them (or a model trained without signals shown them) it
ranks from text it was never trained on, silently worse. So a trained folder's
``iranker.json`` records ``signals: {scenario: [names]}`` (``{}``: trained without; a folder
from before signals existed was trained without them too) and every LLM ranker checks the
examples against it. Models that are not iranker-trained folders (the base, a hub id, a server
model) record nothing and are not checked: zero-shot, any prompt is as foreign as another.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..llm import DEFAULT_MODEL
from ..llm.base import BackendError
from ..llm.models import resolve_model
from ..run_info import read_run_info
from ..types import RankingExample
from .render import ordered_names
from .schema import SignalError, example_signal_names


class SignalsMismatch(SignalError):
    """The examples' signals are not the ones the model was trained with."""


def signals_from_info(info: Mapping[str, Any] | None) -> dict[str, list[str]] | None:
    """``{scenario: [names]}`` from a run-info mapping; ``None`` when ``info`` is None (not trained)."""
    if info is None:
        return None
    raw = info.get("signals") or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"iranker.json: 'signals' must map scenario -> list of names, got {raw!r}")
    return {str(s): sorted(str(n) for n in names) for s, names in raw.items() if names}


def recorded_signals(backend: Any) -> dict[str, list[str]] | None:
    """The signals ``backend``'s model was trained with (None: not an iranker-trained folder).

    ``backend.signals`` when the backend sets it (tests, wrappers); else the ``iranker.json`` of
    the local folder it loaded (``resolved.path``, or vLLM's ``lora_path``).
    """
    if hasattr(backend, "signals"):
        value = getattr(backend, "signals")
        return None if value is None else {str(k): sorted(v) for k, v in dict(value).items() if v}

    resolved = getattr(backend, "resolved", None)
    path = (
        getattr(resolved, "path", None)
        if resolved is not None and getattr(resolved, "is_local", False)
        else None
    )
    path = path or getattr(getattr(backend, "target", None), "lora_path", None)
    if not path:
        return None
    try:
        return signals_from_info(read_run_info(path))
    except (OSError, ValueError):
        return None


def recorded_signals_for_model(
    model: str | None, backend: str = "transformers"
) -> dict[str, list[str]] | None:
    """What the model ``model`` names records, before it is loaded (local backends only)."""
    if backend not in ("transformers", "vllm"):
        return None

    try:
        resolved = resolve_model(model or DEFAULT_MODEL)
        if resolved.kind not in ("adapter", "folder"):
            return None
        return signals_from_info(read_run_info(resolved.path))
    except (BackendError, OSError, ValueError):
        return None  # the backend reports a bad model when it loads


def signal_record(examples: Iterable[RankingExample]) -> dict[str, list[str]]:
    """``{scenario: [names]}`` of the signals ``examples`` carry (what training records)."""
    out: dict[str, set[str]] = {}
    for ex in examples:
        names = example_signal_names(ex)
        if names:
            out.setdefault(ex.scenario, set()).update(names)
    return {s: sorted(v) for s, v in sorted(out.items())}


def _names(names: Iterable[str]) -> str:
    return ",".join(ordered_names(names))


def check_signals_match(
    recorded: Mapping[str, list[str]] | None, example: RankingExample, model: str = "the model"
) -> None:
    """Raise :class:`SignalsMismatch` (one line) when ``example``'s signals differ from ``recorded``.

    For a scenario the model was trained on, the names must be the same; for one it was not
    (zero-shot transfer), a subset of everything it was trained with; a model trained without
    signals takes none.
    """
    if recorded is None:
        return
    have = example_signal_names(example)
    union = set().union(*map(set, recorded.values())) if recorded else set()
    if not union:
        if have:
            raise SignalsMismatch(
                f"{model} was trained without signals, but example {example.id!r} carries {_names(have)}; "
                "rank without --signals and without candidate 'signals', or use a model trained with them"
            )
        return
    want = set(recorded.get(example.scenario, ()))
    if not have:
        hint = _names(want or union)
        raise SignalsMismatch(
            f"{model} was trained with signals ({_names(union)}), but example {example.id!r} carries none; "
            f"rank with --signals {hint} (Ranker(signals=...), serve --signals) or give candidates 'signals'"
        )
    if want and have != want:
        raise SignalsMismatch(
            f"{model} was trained with {example.scenario} signals {_names(want)}, but example "
            f"{example.id!r} carries {_names(have)}; rank with --signals {_names(want)}"
        )
    if not want and not have <= union:
        raise SignalsMismatch(
            f"{model} was trained with signals {_names(union)} (not on {example.scenario}), but example "
            f"{example.id!r} carries {_names(have - union)} too; drop those"
        )


def signals_of_steps(info: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The ``{scenario: [names]}`` a step dataset's ``info.json`` says its prompts show ({} = none).

    What ``iranker train`` records in ``iranker.json``: the signals its model saw.
    """
    raw = (info or {}).get("signals") or {}
    record = raw.get("record", {}) if isinstance(raw, Mapping) and "record" in raw else raw
    return {str(s): sorted(map(str, v)) for s, v in dict(record).items() if v}


__all__ = [
    "SignalsMismatch",
    "check_signals_match",
    "recorded_signals",
    "recorded_signals_for_model",
    "signal_record",
    "signals_from_info",
    "signals_of_steps",
]
