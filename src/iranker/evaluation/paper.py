"""The IRanker paper's reference numbers, shown in every report under their own heading.

The numbers live in one data file, ``iranker/resources/paper_reference.json`` (the paper, its
table, the measure and how they were transcribed, keyed by iranker task id), so that a
correction is one edit and every report, ``metrics.json`` and test reads the same cells.

They are the paper's measurements on the paper's own test samples. A run here draws its own
examples (other users, queries and sampled negatives) and several tasks use stand-in data, so
the report prints them in a separate table, never as rows of this run's results, next to the
chance level of this run's pools: the one number both can be read against.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from typing import Any, Mapping, Sequence

__all__ = [
    "PAPER_FILE",
    "paper_lines",
    "paper_reference",
    "paper_row_label",
    "paper_tasks",
    "plot_paper_panel",
]

PAPER_FILE = "paper_reference.json"


@functools.lru_cache(maxsize=1)
def paper_reference() -> dict[str, Any]:
    """The parsed ``paper_reference.json``; raises ``ValueError`` if a row lacks a task's cell.

    Checked at load so that a bad edit of the data file fails every report test rather than
    silently printing an empty cell.
    """
    text = resources.files("iranker").joinpath("resources").joinpath(PAPER_FILE).read_text(encoding="utf-8")
    ref = json.loads(text)
    tasks = list(ref["paper_columns"].values())
    for name, row in ref["rows"].items():
        cells = row["mrr_x100"]
        missing = [t for t in tasks if not isinstance(cells.get(t), (int, float))]
        extra = sorted(set(cells) - set(tasks))
        if missing or extra:
            raise ValueError(f"{PAPER_FILE}: row {name!r}: missing {missing}, unknown {extra}")
    return ref


def paper_tasks(order: Sequence[str]) -> list[str]:
    """The paper's task ids in the report's column order ``order`` (unknown ones last)."""
    tasks = list(paper_reference()["paper_columns"].values())
    return [t for t in order if t in tasks] + [t for t in tasks if t not in order]


def paper_row_label(name: str) -> str:
    return f"{name} (paper)"


def _chance_cell(doc: Mapping[str, Any], task: str) -> str:
    chance = ((doc.get("tasks") or {}).get(task) or {}).get("chance") or {}
    value = chance.get("MRR")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * float(value):.1f}"


def _pool_cell(doc: Mapping[str, Any], task: str) -> str:
    sizes = (((doc.get("tasks") or {}).get(task) or {}).get("chance") or {}).get("pool_sizes") or []
    if not sizes:
        return "—"
    return str(sizes[0]) if len(sizes) == 1 else f"{min(sizes)}-{max(sizes)}"


def paper_lines(doc: Mapping[str, Any], order: Sequence[str]) -> list[str]:
    """The report section: the paper's rows, the chance row of this run's pools, pool sizes."""
    ref = paper_reference()
    tasks = paper_tasks(order)
    header = ["MRR ×100", *tasks]
    rows = [
        [paper_row_label(name), *[f"{row['mrr_x100'][t]:.2f}" for t in tasks]]
        for name, row in ref["rows"].items()
    ]
    rows.append(["chance (this run's pools)", *[_chance_cell(doc, t) for t in tasks]])
    rows.append(["pool size N (this run)", *[_pool_cell(doc, t) for t in tasks]])
    lines = [
        "## The IRanker paper's numbers (the paper's own samples)",
        "",
        f"{ref['measure'].replace('x100', '×100')} from the {ref['table']} of *{ref['paper']}* "
        f"({ref['url']}; {ref['transcribed']}). These are **the paper's numbers on "
        "the paper's own test samples** (Qwen2.5-3B models): they are **not comparable one-to-one** "
        "with the results above, because this run draws its own examples (other users, queries and "
        "sampled negatives) and several tasks here use stand-in data (see the data notes). The "
        "chance row is the expected MRR ×100 of a uniformly random ranking of **this run's** pools "
        "(each example's own candidate count and number of relevant candidates under the MRR rule; "
        "`iranker.metrics.expected_random_rr`); with one relevant candidate among N it is "
        "H_N / N (N=20: 18.0, N=9: 31.4, N=5: 45.7). — = task not in this run.",
        "",
    ]
    from .report import _md_table as md_table

    lines += md_table(header, rows)
    lines += [""] + [
        f"- **{paper_row_label(name)}**: {row['description']}." for name, row in ref["rows"].items()
    ]
    return lines + [""]


def plot_paper_panel(ax: Any, doc: Mapping[str, Any], order: Sequence[str]) -> None:
    """Grouped bars of the paper's rows per task on ``ax``, with this run's chance as a tick."""
    ref = paper_reference()
    tasks = paper_tasks(order)
    names = list(ref["rows"])
    width = 0.8 / max(1, len(names))
    greys = ("#4d4d4d", "#8c8c8c", "#c4c4c4")
    for j, name in enumerate(names):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(tasks))]
        ys = [ref["rows"][name]["mrr_x100"][t] for t in tasks]
        ax.bar(
            xs,
            ys,
            width=width,
            label=paper_row_label(name),
            color=greys[j % len(greys)],
            hatch="//" if j == 0 else None,
            edgecolor="white",
        )
    label = "chance (this run's pools)"
    for i, t in enumerate(tasks):
        chance = ((doc.get("tasks") or {}).get(t) or {}).get("chance") or {}
        if chance.get("MRR") is not None:
            ax.hlines(
                100 * float(chance["MRR"]), i - 0.45, i + 0.45, colors="#d62728", linewidth=2, label=label
            )
            label = "_nolegend_"
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("MRR ×100")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(
        "IRanker paper: its numbers on its own samples (not comparable one-to-one with this run)", fontsize=9
    )
    ax.legend(fontsize=8, ncol=4, loc="upper right", frameon=False)
