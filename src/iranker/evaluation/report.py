"""Metrics per task x method (``metrics.json``), the Markdown report and the bar chart.

What "relevant" means, per task (written into ``metrics.json`` and the report):

* routing: the task builders grade every LLM (``n - position`` in the utility order), so every
  LLM has a positive grade and "grade > 0" would make every MRR 1.0. MRR and Hit@k therefore
  count only the **best** LLM (the example's highest grade); nDCG@k uses the grades.
* trec-dl19: graded qrels 0-3; MRR and Hit@k count grade >= 2 (the TREC DL convention for
  binary measures); the headline is nDCG@10 against **all** judged passages of the query
  (``meta["qrels"]``, trec_eval's ``ndcg_cut_10`` of the re-ranked pool), next to nDCG@10
  with only the pool's grades.
* everything else: grade > 0 (one relevant candidate per example).

An example whose pool holds no relevant candidate scores 0 (every ranking would), and is
counted in ``n_without_relevant``; an example without any relevance labels (a user's own
file) is left out and counted in ``n_unlabelled``.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..atomic_files import atomic_path, atomic_write_text
from ..metrics import (
    check_permutation,
    dcg_at_k,
    default_threshold,
    expected_random_rr,
    has_positive,
    score_example,
)
from ..types import Ranking, RankingExample
from .paper import paper_lines, paper_reference, plot_paper_panel
from .runner import LLM_METHODS, METHODS, EvalTask, PredictionStore, prediction_key

__all__ = [
    "MEASURES",
    "PAPER_REFERENCE",
    "chance_metrics",
    "compute_metrics",
    "example_metrics",
    "headline_measure",
    "is_informative",
    "write_metrics",
    "write_report",
    "write_report_png",
]

MEASURES: tuple[str, ...] = ("MRR", "NDCG@5", "NDCG@10", "Hit@1", "Hit@5")
ALL_QRELS = "NDCG@10 (all qrels)"
TASK_ORDER = (
    "rec-movie",
    "rec-music",
    "rec-game",
    "router-performance",
    "router-balance",
    "router-cost",
    "passage-5",
    "passage-7",
    "passage-9",
    "trec-dl19",
)

#: The IRanker paper's rows (``iranker/resources/paper_reference.json``; see ``paper.py``).
PAPER_REFERENCE: dict[str, Any] = paper_reference()


# ---------------------------------------------------------------------------------------------
# Per-example metrics


def headline_measure(task: str) -> str:
    return ALL_QRELS if task == "trec-dl19" else "MRR"


def is_informative(example: RankingExample) -> bool | None:
    """Routing: True when the LLMs' measured scores are not all equal (None if unknown)."""
    if example.scenario != "routing":
        return None
    flag = example.meta.get("informative")
    if isinstance(flag, bool):
        return flag
    scores = example.meta.get("scores")
    if isinstance(scores, Mapping) and scores:
        return len({float(v) for v in scores.values()}) > 1
    return None


def example_metrics(order: Sequence[str], example: RankingExample) -> dict[str, float] | None:
    """The measures for one ranked example (None if it carries no relevance labels)."""
    if not example.relevance and "qrels" not in example.meta:
        return None
    # the one per-example rule (metrics.score_example); an example without a relevant
    # candidate scores 0 and is counted (n_without_relevant), as trec_eval does
    out = score_example(order, example, MEASURES, no_positive="zero")
    assert out is not None
    qrels = example.meta.get("qrels")
    if isinstance(qrels, Mapping) and qrels:
        grades = {str(k): float(v) for k, v in qrels.items()}
        ideal = dcg_at_k(sorted((g for g in grades.values() if g > 0), reverse=True), 10)
        out[ALL_QRELS] = dcg_at_k((grades.get(c, 0.0) for c in order), 10) / ideal if ideal > 0 else 0.0
    return out


def chance_metrics(examples: Sequence[RankingExample]) -> dict[str, Any]:
    """Expected MRR of a uniformly random ranking of these examples' own pools.

    Per example: its candidate count and how many candidates count as relevant under the
    task's MRR rule (the same threshold ``example_metrics`` uses), then ``expected_random_rr``;
    averaged over the labelled examples, as MRR is. The paper section of the report prints it
    as the chance row, because a bare MRR means little without the pool size behind it.
    """
    values, sizes = [], set()
    for ex in examples:
        if not ex.relevance and "qrels" not in ex.meta:
            continue
        cands = set(ex.candidate_ids)
        rel = {c: float(g) for c, g in ex.relevance.items() if c in cands}
        thr = default_threshold(ex, rel)
        n_rel = sum(1 for g in rel.values() if (g > 0 if thr is None else g >= thr))
        values.append(expected_random_rr(len(ex.candidates), n_rel))
        sizes.add(len(ex.candidates))
    return {
        "MRR": _mean(values) if values else None,
        "pool_sizes": sorted(sizes),
        "rule": "mean over examples of the expected RR of a uniformly random order of the example's pool",
    }


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return math.fsum(vals) / len(vals) if vals else float("nan")


def _aggregate(rows: list[dict[str, float]]) -> dict[str, float]:
    names = list(rows[0]) if rows else list(MEASURES)
    return {name: _mean(r[name] for r in rows) for name in names}


def task_method_metrics(task: EvalTask, method: str, store: PredictionStore) -> dict[str, Any] | None:
    """Metrics of one method on one task from the stored predictions (None if any is missing)."""
    rows, inf_rows, inf_ids = [], [], []
    valid, seconds = [], 0.0
    usage = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
    unlabelled = without_rel = 0
    headline = headline_measure(task.name)
    per_example: dict[str, float] = {}
    per_valid: dict[str, float] = {}
    top1: Counter = Counter()
    for ex in task.examples:
        rec = store.get(prediction_key(task.name, method, ex.id))
        if rec is None:
            return None
        ranking = Ranking(example_id=ex.id, order=[str(x) for x in rec["ranking"]])
        check_permutation(ranking, ex)
        if ranking.order:
            top1[ranking.order[0]] += 1
        seconds += float(rec.get("seconds") or 0.0)
        for k in usage:
            usage[k] += int((rec.get("usage") or {}).get(k, 0))
        if rec.get("valid") is not None:
            valid.append(float(rec["valid"]))
            per_valid[ex.id] = round(float(rec["valid"]), 6)
        m = example_metrics(ranking.order, ex)
        if m is None:
            unlabelled += 1
            continue
        if m.get(headline) is not None:
            per_example[ex.id] = round(m[headline], 6)
        if not has_positive(ex):
            without_rel += 1
        rows.append(m)
        if is_informative(ex):
            inf_rows.append(m)
            inf_ids.append(ex.id)
    out: dict[str, Any] = {"n": len(rows), **_aggregate(rows)}
    if unlabelled:
        out["n_unlabelled"] = unlabelled
    if without_rel:
        out["n_without_relevant"] = without_rel
    if method in LLM_METHODS or valid:
        out["valid_rate"] = _mean(valid) if valid else None
        out["usage"] = usage
    # per example (headline measure, valid share): paired comparisons between runs
    # (`iranker compare`) need them, and they are small next to the predictions
    out["per_example"] = per_example
    if per_valid:
        out["per_example_valid"] = per_valid
    out["seconds"] = round(seconds, 3)
    out["seconds_per_example"] = round(seconds / len(task.examples), 6) if task.examples else 0.0
    if task.scenario == "routing" and any(is_informative(ex) is not None for ex in task.examples):
        # the ids let `iranker compare` pair runs on the informative subset too
        out["informative"] = {
            "n": len(inf_rows),
            **(_aggregate(inf_rows) if inf_rows else {}),
            "ids": inf_ids,
        }
    if task.scenario == "routing":
        # query dependence: a router that ranks one fixed order has a single top-1 for every query
        out["top1"] = {"distinct": len(top1), "most_common": top1.most_common(1)[0] if top1 else None}
    return out


RULES = {
    "MRR/Hit relevant": (
        "routing: only the best LLM (highest grade); trec-dl19: grade >= 2; otherwise grade > 0"
    ),
    "NDCG": "linear gain over the example's graded relevance of its candidates (trec_eval ndcg_cut)",
    ALL_QRELS: "trec-dl19 only: ideal DCG from all judged passages of the query, as trec_eval",
    "informative": "routing queries whose LLM scores are not all equal (price alone cannot win there)",
    "headline": "MRR x100 per task; trec-dl19: nDCG@10 (all qrels) x100",
}


METHOD_NOTES = {
    "random": "a seeded random permutation per example (chance)",
    "bm25": "BM25 of the query (history titles / question) against the example's own candidates",
    "dense": "cosine similarity of all-MiniLM-L6-v2 embeddings (or --embed-model), query vs candidates",
    "knn": (
        "trained task-specific baseline: recommendation = item-kNN (cosine co-occurrence over the "
        "training users' item sets, summed over the history); routing = kNN over embedded training "
        "queries (similarity-weighted mean of each LLM's graded rank under the objective, k={k}); "
        "passage = the dense model (no training data), so its passage cells equal dense"
    ),
    "cheapest-first": "routing: LLMs by price, cheapest first (no learning)",
    "most-frequent-best": "routing: LLMs by how often each was the best one on the training queries",
    "iterative": "the LLM eliminates the worst remaining candidate step by step (IRanker)",
    "iterative-choice": "iterative elimination reading the label log-probabilities in one forward pass",
    "direct": "the LLM writes the full order in one answer (DRanker)",
}


def compute_metrics(
    plan: Sequence[tuple[EvalTask, Sequence[str]]],
    store: PredictionStore,
    *,
    settings: Mapping[str, Any] | None = None,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` document: per task x method, merged over ``previous`` results."""
    tasks: dict[str, Any] = dict((previous or {}).get("tasks", {}))
    results: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (previous or {}).get("results", {}).items()}
    for task, methods in plan:
        meta = dict(task.metadata)
        tasks[task.name] = {
            "scenario": task.scenario,
            "n_examples": len(task.examples),
            "headline": headline_measure(task.name),
            "seed": meta.get("seed"),
            "split_rule": meta.get("split_rule"),
            "stand_in": meta.get("stand_in"),
            "n_informative": sum(bool(is_informative(ex)) for ex in task.examples)
            if task.scenario == "routing"
            else None,
            "chance": chance_metrics(task.examples),
            "metadata": meta,
        }
        per = results.setdefault(task.name, {})
        for method in methods:
            m = task_method_metrics(task, method, store)
            if m is not None:
                per[method] = m
    return {
        "measures": [*MEASURES, ALL_QRELS],
        "rules": RULES,
        "settings": dict(settings or {}),
        "paper_reference": PAPER_REFERENCE,
        "tasks": tasks,
        "results": results,
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _nan_to_none(o: Any) -> Any:
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {k: _nan_to_none(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_nan_to_none(v) for v in o]
    return o


def write_metrics(out_dir: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path:
    return atomic_write_text(
        Path(out_dir) / "metrics.json",
        json.dumps(_nan_to_none(dict(doc)), indent=2, ensure_ascii=False, default=_json_default) + "\n",
    )


def read_metrics(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(out_dir) / "metrics.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Report


def _ordered_tasks(names: Iterable[str]) -> list[str]:
    names = list(names)
    known = [t for t in TASK_ORDER if t in names]
    return known + [t for t in names if t not in TASK_ORDER]


def _ordered_methods(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    return [m for m in METHODS if m in names] + [m for m in names if m not in METHODS]


def _columns(doc: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(column title, task, informative?) in report order."""
    cols = []
    for t in _ordered_tasks(doc["tasks"]):
        info = doc["tasks"][t]
        title = f"{t} (nDCG@10)" if info.get("headline") == ALL_QRELS else t
        cols.append((title, t, False))
        if info.get("scenario") == "routing" and info.get("n_informative"):
            cols.append((f"{t} (informative)", t, True))
    return cols


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * float(value):.1f}"


def _value(doc: Mapping[str, Any], task: str, method: str, informative: bool) -> float | None | str:
    res = doc["results"].get(task, {}).get(method)
    if res is None:
        return "—"
    measure = doc["tasks"][task].get("headline", "MRR")
    if informative:
        return (res.get("informative") or {}).get(measure)
    return res.get(measure)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def write_report(out_dir: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path:
    """``report.md``: the headline table (methods x tasks), reference rows, notes, details."""
    cols = _columns(doc)
    methods = _ordered_methods(m for per in doc["results"].values() for m in per)
    s = doc.get("settings") or {}
    llm = s.get("llm") or {}
    lines = ["# iranker evaluation", ""]
    run_bits = [
        f"seed {s.get('seed')}",
        f"limit {s.get('limit') if s.get('limit') is not None else 'none (full test sets)'}",
        f"split {s.get('split', 'test')}",
    ]
    if s.get("input"):
        run_bits.append(f"input `{s['input']}`")
    if s.get("data_dir"):
        run_bits.append(f"data `{s['data_dir']}`")
    if s.get("embed_model"):
        run_bits.append(f"embeddings `{s['embed_model']}`")
    if llm:
        from ..llm import DEFAULT_MODEL

        model = llm.get("model") or (
            DEFAULT_MODEL if llm.get("backend") in ("transformers", "vllm") else "default"
        )
        run_bits.append(f"LLM `{model}` via {llm.get('backend')}")
    lines += ["Run: " + ", ".join(run_bits) + ".", ""]
    lines += [
        "## Results",
        "",
        "MRR ×100 per task, as in the IRanker paper; the **trec-dl19** column reports "
        "**nDCG@10 ×100** (against all DL19 judgements of the query). Columns marked "
        "*(informative)* repeat a routing task on the queries whose LLM scores are not all "
        "equal. — = not run / not applicable.",
        "",
    ]
    header = ["method", *[c[0] for c in cols]]
    rows = []
    for m in methods:
        rows.append(
            [m, *[(v if isinstance(v := _value(doc, t, m, inf), str) else _cell(v)) for _, t, inf in cols]]
        )
    n_row = ["n (test examples)"]
    for _, t, inf in cols:
        info = doc["tasks"][t]
        n_row.append(str(info.get("n_informative") if inf else info.get("n_examples")))
    rows.append(n_row)
    lines += _md_table(header, rows)
    lines += [""]
    lines += paper_lines(doc, TASK_ORDER)

    llm_methods = [m for m in methods if m in LLM_METHODS]
    if llm_methods:
        lines += [
            "## Valid-answer rate (LLM methods)",
            "",
            "Share of elimination steps (iterative) or answers (direct) that named a candidate "
            "without the fallback, ×100.",
            "",
        ]
        vcols = [c for c in cols if not c[2]]
        vrows = []
        for m in llm_methods:
            cells = []
            for _, t, _ in vcols:
                res = doc["results"].get(t, {}).get(m)
                cells.append("—" if res is None else _cell(res.get("valid_rate")))
            vrows.append([m, *cells])
        lines += _md_table(["method", *[c[0] for c in vcols]], vrows) + [""]

    routing = [c for c in cols if not c[2] and (doc["tasks"][c[1]].get("scenario") == "routing")]
    if routing:
        lines += [
            "## Query dependence (routing)",
            "",
            "Distinct LLMs ranked first over the task's queries (a router that ignores the query "
            "ranks one LLM first for every query), and the most frequent top-1 with its count.",
            "",
        ]
        trows = []
        for m in methods:
            cells = []
            for _, t, _ in routing:
                top = (doc["results"].get(t, {}).get(m) or {}).get("top1") or {}
                common = top.get("most_common")
                cells.append(
                    "—"
                    if not top
                    else f"{top['distinct']} ({common[0]} {common[1]})"
                    if common
                    else str(top["distinct"])
                )
            trows.append([m, *cells])
        lines += _md_table(["method", *[c[0] for c in routing]], trows) + [""]

    lines += ["## Data notes and stand-ins", ""]
    for t in _ordered_tasks(doc["tasks"]):
        info = doc["tasks"][t]
        meta = info.get("metadata") or {}
        bits = [f"{info.get('n_examples')} test examples"]
        if meta.get("source"):
            bits.append(f"source `{meta['source']}`")
        if info.get("n_informative") is not None:
            bits.append(f"{info['n_informative']} informative")
        lines.append(f"- **{t}**: " + "; ".join(bits) + ".")
        if info.get("stand_in"):
            lines.append(f"  - Stand-in: {info['stand_in']}.")
        for note in meta.get("notes") or []:
            lines.append(f"  - Note: {note}.")
        if meta.get("split_rule"):
            seeds = f"seed {meta.get('seed')}" + (
                f", split seed {meta['split_seed']}" if "split_seed" in meta else ""
            )
            lines.append(f"  - Split: {meta['split_rule']} ({seeds}).")
        skipped = meta.get("skipped")
        if skipped:
            lines.append("  - Skipped: " + ", ".join(f"{v} × {k}" for k, v in skipped.items()) + ".")
    lines += ["", "## Methods", ""]
    k = (s.get("knn") or {}).get("k", 10)
    lines += [f"- **{m}**: {METHOD_NOTES[m].format(k=k)}." for m in methods if m in METHOD_NOTES]
    lines += ["", "## Rules", ""]
    lines += [f"- **{k}**: {v}." for k, v in (doc.get("rules") or RULES).items()]
    lines += ["", "## All measures", ""]
    for t in _ordered_tasks(doc["tasks"]):
        per = doc["results"].get(t, {})
        if not per:
            continue
        measures = list(MEASURES) + ([ALL_QRELS] if any(ALL_QRELS in r for r in per.values()) else [])
        drows = []
        for m in _ordered_methods(per):
            r = per[m]
            drows.append(
                [
                    m,
                    str(r.get("n")),
                    *[_cell(r.get(x)) for x in measures],
                    _cell(r["valid_rate"]) if r.get("valid_rate") is not None else "—",
                    f"{r.get('seconds_per_example', 0):.4f}",
                ]
            )
        lines += [f"### {t}", ""]
        lines += _md_table(["method", "n", *measures, "valid", "s/example"], drows) + [""]
    return atomic_write_text(Path(out_dir) / "report.md", "\n".join(lines) + "\n")


def write_report_png(out_dir: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path | None:
    """``report.png``: this run's grouped bars (one group per task column, one bar per method)
    above a separate panel with the paper's rows and the chance level of this run's pools.

    Returns None (and writes nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cols = _columns(doc)
    methods = _ordered_methods(m for per in doc["results"].values() for m in per)
    if not cols or not methods:
        return None
    width = 0.8 / max(1, len(methods))
    fig, (ax, paper_ax) = plt.subplots(
        2, 1, figsize=(max(8.0, 1.1 * len(cols) + 2), 9.0), gridspec_kw={"height_ratios": [1.0, 0.8]}
    )
    cmap = plt.get_cmap("tab10")
    for j, m in enumerate(methods):
        xs, ys = [], []
        for i, (_, t, inf) in enumerate(cols):
            v = _value(doc, t, m, inf)
            if isinstance(v, (int, float)) and not math.isnan(float(v)):
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(100 * float(v))
        ax.bar(xs, ys, width=width, label=m, color=cmap(j % 10))
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([c[0].replace(" (", "\n(") for c in cols], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("MRR ×100 (trec-dl19: nDCG@10 ×100)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        fontsize=8, ncol=min(len(methods), 6), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False
    )
    plot_paper_panel(paper_ax, doc, TASK_ORDER)
    fig.tight_layout()
    path = Path(out_dir) / "report.png"
    with atomic_path(path, suffix=".tmp.png") as tmp:  # savefig picks the format from the extension
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
