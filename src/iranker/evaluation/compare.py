"""``iranker compare``: two or more ``iranker eval`` folders side by side, paired per example.

    iranker compare results/base results/trained --names base,trained --methods iterative \\
        --out results/base-vs-trained

The typical question is "did training help?": the same test examples ranked by the base model
and by the trained one. Means over a few examples are noisy, so besides each run's headline
measure and valid-answer rate the comparison reports, for every later run against the first,
the paired difference over the examples both runs scored: wins / ties / losses and a seeded
paired-bootstrap 95% interval of the mean difference. Runs made on different examples (other
``--seed``, ``--limit``, split, data or input file) are refused, because their means would
not measure the same thing; what *may* differ (model, prompts, decoding) is listed in the
report so a reader sees what was compared.

Writes ``DIR/compare.json``, ``DIR/compare.md`` and (with matplotlib) ``DIR/compare.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..cli.errors import CLIError
from .report import _ordered_methods, _ordered_tasks, headline_measure

#: settings that fix *which* examples a run scored: they must agree
SAME_EXAMPLES = ("mode", "seed", "limit", "split", "data_dir", "input_sha256")
BOOTSTRAP_SAMPLES = 10_000


class CompareError(ValueError):
    """Runs that cannot be compared (missing, or scored on different examples)."""


def split_run_ref(ref: str) -> tuple[str, str | None]:
    """``FOLDER`` or ``FOLDER:METHOD`` (one method of a folder) -> (folder, method or None)."""
    ref = str(ref)
    if not Path(ref).is_dir() and ":" in ref:
        folder, method = ref.rsplit(":", 1)
        if Path(folder).is_dir() and method:
            return folder, method
    return ref, None


def select_method(doc: Mapping[str, Any], method: str, ref: str) -> dict[str, Any]:
    """``doc`` with only ``method`` kept, renamed ``SELECTED`` in every task that has it, so that
    different methods (the trained LLM vs BM25, in one folder or two) pair per example."""
    results = {t: {SELECTED: ms[method]} for t, ms in doc["results"].items() if method in ms}
    if not results:
        known = sorted({m for ms in doc["results"].values() for m in ms})
        raise CompareError(f"{ref}: no task has the method {method!r}; it has {', '.join(known)}")
    return {**doc, "results": results}


#: the method name of runs given as FOLDER:METHOD
SELECTED = "selected"


def load_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The metrics of an eval folder; ``FOLDER:METHOD`` keeps one method (see ``select_method``)."""
    ref = str(folder)
    folder, method = split_run_ref(ref)
    doc = _load_metrics(folder)
    return select_method(doc, method, ref) if method else doc


def _load_metrics(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise CompareError(f"{folder}: no metrics.json (is it an `iranker eval` output folder?)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"{path}: cannot read it: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise CompareError(f"{path}: not an `iranker eval` metrics file (no 'results')")
    return doc


def check_same_examples(docs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> None:
    """Raise ``CompareError`` naming the setting that differs between runs."""
    first = docs[0].get("settings") or {}
    for doc, name in zip(docs[1:], names[1:]):
        other = doc.get("settings") or {}
        for key in SAME_EXAMPLES:
            if first.get(key) != other.get(key):
                raise CompareError(
                    f"{names[0]} and {name} were scored on different examples: {key} is "
                    f"{first.get(key)!r} vs {other.get(key)!r}; rerun one with the other's settings"
                )


def differing_settings(docs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The LLM settings that differ between runs (what the comparison is about)."""
    llms = [dict((d.get("settings") or {}).get("llm") or {}) for d in docs]
    for llm in llms:  # an unset --decode/--reuse meant the mode the trained model records
        recorded = (llm.get("model_identity") or {}).get("ranking") or {}
        for key, value in recorded.items():
            llm.setdefault(key, value)
    keys = sorted({k for llm in llms for k in llm})
    return {
        k: [llm.get(k) for llm in llms] for k in keys if len({json.dumps(llm.get(k)) for llm in llms}) > 1
    }


def paired(a: Mapping[str, float], b: Mapping[str, float], *, seed: int = 0) -> dict[str, Any] | None:
    """Paired difference ``b - a`` over the examples both scored (None if they share none).

    The interval is a percentile bootstrap over examples (resampled with replacement, seeded),
    the usual paired test in IR evaluation when the sample is too small for a t-interval.
    """
    ids = sorted(set(a) & set(b))
    if not ids:
        return None
    diffs = [float(b[i]) - float(a[i]) for i in ids]
    eps = 1e-12
    out: dict[str, Any] = {
        "n": len(ids),
        "mean_diff": math.fsum(diffs) / len(diffs),
        "wins": sum(d > eps for d in diffs),
        "ties": sum(abs(d) <= eps for d in diffs),
        "losses": sum(d < -eps for d in diffs),
    }
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(BOOTSTRAP_SAMPLES))
    out["ci95"] = [means[int(0.025 * (len(means) - 1))], means[int(0.975 * (len(means) - 1))]]
    return out


def _informative(cell: Mapping[str, Any]) -> dict[str, Any] | None:
    """A routing cell restricted to its informative queries (needs the ids eval records)."""
    inf = cell.get("informative") or {}
    ids = inf.get("ids")
    if ids is None:
        return None
    keep = set(ids)
    out = {k: v for k, v in inf.items() if k != "ids"}
    out["per_example"] = {i: v for i, v in (cell.get("per_example") or {}).items() if i in keep}
    if cell.get("per_example_valid") is not None:
        out["per_example_valid"] = {i: v for i, v in cell["per_example_valid"].items() if i in keep}
        vals = list(out["per_example_valid"].values())
        out["valid_rate"] = sum(vals) / len(vals) if vals else None
    return out


def _cells(
    docs: Sequence[Mapping[str, Any]], tasks: Sequence[str], methods: Sequence[str] | None, order: Any
):
    """(task label, method, one cell per run); routing tasks repeat as "task (informative)"
    when every run recorded the informative ids."""
    for task in tasks:
        common = [m for m in docs[0]["results"][task] if all(m in d["results"][task] for d in docs)]
        chosen = [m for m in order(common) if methods is None or m in methods]
        subsets: list[tuple[str, list[Any]]] = []
        for method in chosen:
            cells = [d["results"][task][method] for d in docs]
            yield task, method, cells
            inf = [_informative(c) for c in cells]
            if all(x is not None for x in inf):
                subsets.append((method, inf))
        for method, inf in subsets:
            yield f"{task} (informative)", method, inf


def compare(
    docs: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    methods: Sequence[str] | None = None,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``compare.json`` document for runs ``docs`` called ``names`` (first = reference)."""
    if len(docs) < 2:
        raise CompareError("compare needs at least two runs")
    if len(names) != len(docs) or len(set(names)) != len(names):
        raise CompareError(f"need {len(docs)} distinct names, got {list(names)}")
    check_same_examples(docs, names)

    tasks = _ordered_tasks(t for t in docs[0]["results"] if all(t in d["results"] for d in docs))
    if not tasks:
        raise CompareError("the runs have no task in common")
    rows = []
    for task, method, cells in _cells(docs, tasks, methods, _ordered_methods):
        measure = headline_measure(task.split(" (")[0])
        row: dict[str, Any] = {
            "task": task,
            "method": method,
            "measure": measure,
            "n": [c.get("n") for c in cells],
            "value": [c.get(measure) for c in cells],
            "valid_rate": [c.get("valid_rate") for c in cells],
            "vs_first": [],
        }
        ref = cells[0]
        for c in cells[1:]:
            entry: dict[str, Any] = {}
            p = paired(ref.get("per_example") or {}, c.get("per_example") or {}, seed=seed)
            if p is not None:
                entry[measure] = p
            pv = paired(ref.get("per_example_valid") or {}, c.get("per_example_valid") or {}, seed=seed)
            if pv is not None:
                entry["valid_rate"] = pv
            row["vs_first"].append(entry or None)
        rows.append(row)
    if methods is not None and not rows:
        raise CompareError(f"none of the methods {list(methods)} was run on a common task by every run")
    return {
        "runs": list(names),
        "settings": [d.get("settings") for d in docs],
        "differs": differing_settings(docs),
        "bootstrap": {"samples": BOOTSTRAP_SAMPLES, "seed": seed, "interval": "percentile 95%"},
        "rows": rows,
    }


# -- rendering ------------------------------------------------------------------------------------
def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.1f}"


def _diff(p: Mapping[str, Any] | None) -> str:
    if not p:
        return "—"
    lo, hi = p["ci95"]
    return (
        f"{100 * p['mean_diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] "
        f"({p['wins']}/{p['ties']}/{p['losses']})"
    )


def render_markdown(doc: Mapping[str, Any], *, sources: Sequence[str] = ()) -> str:
    names = doc["runs"]
    lines = ["# iranker comparison", ""]
    for name, src in zip(names, sources):
        lines.append(f"- **{name}**: `{src}`")
    if doc["differs"]:
        lines += ["", "What differs between the runs (LLM settings):", ""]
        for key, values in doc["differs"].items():
            lines.append(f"- `{key}`: " + ", ".join(f"{n} = `{v!r}`" for n, v in zip(names, values)))
    lines += [
        "",
        "Headline measure ×100 (MRR; trec-dl19: nDCG@10 over all judgements) and valid-answer "
        "rate ×100 (share of answers that named a candidate without the fallback). "
        f"Δ = {' / '.join(names[1:])} − {names[0]} over the same examples: mean, paired bootstrap "
        "95% interval, and examples better/equal/worse.",
        "",
    ]
    header = ["task", "method", "n"] + [f"{n}" for n in names] + [f"Δ {n}" for n in names[1:]]
    header += [f"valid {n}" for n in names] + [f"Δ valid {n}" for n in names[1:]]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for r in doc["rows"]:
        vs = r["vs_first"]
        cells = [r["task"], r["method"], str(r["n"][0])]
        cells += [_pct(v) for v in r["value"]]
        cells += [_diff((e or {}).get(r["measure"])) for e in vs]
        cells += [_pct(v) for v in r["valid_rate"]]
        cells += [_diff((e or {}).get("valid_rate")) for e in vs]
        lines.append("| " + " | ".join(cells) + " |")
    b = doc["bootstrap"]
    lines += [
        "",
        f"Bootstrap: {b['samples']} resamples of the examples, seed {b['seed']}. With few "
        "examples per task the intervals are wide: read a difference as real only when its "
        "interval excludes 0.",
        "",
    ]
    return "\n".join(lines)


def write_png(doc: Mapping[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = doc["rows"]
    names = doc["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.1 * len(rows) + 4), 4.5))
    width = 0.8 / len(names)
    labels = [f"{r['task']}\n{r['method']}" for r in rows]
    for ax, key, title in (
        (axes[0], "value", "headline measure ×100"),
        (axes[1], "valid_rate", "valid answers ×100"),
    ):
        for j, name in enumerate(names):
            vals = [100 * (r[key][j] or 0.0) for r in rows]
            ax.bar([i + j * width for i in range(len(rows))], vals, width, label=name)
        ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(rows))])
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(title)
        ax.set_ylim(0, 100)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(doc: Mapping[str, Any], out: str | os.PathLike[str], *, sources: Sequence[str] = ()) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    j = out / "compare.json"
    j.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(j)
    md = out / "compare.md"
    md.write_text(render_markdown(doc, sources=sources), encoding="utf-8")
    written.append(md)
    png = write_png(doc, out / "compare.png")
    if png:
        written.append(png)
    return written


# -- the command ----------------------------------------------------------------------------------
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare",
        help="compare `iranker eval` folders made on the same examples (e.g. base vs trained)",
        description=(
            "Side-by-side headline measure and valid-answer rate of two or more `iranker eval` "
            "folders, with paired per-example differences against the first (wins/ties/losses "
            "and a bootstrap 95%% interval). Folders scored on different examples are refused."
        ),
    )
    p.add_argument(
        "runs",
        nargs="+",
        help="eval output folders, the first is the reference; FOLDER:METHOD takes one method of a "
        "folder, so different methods pair per example (e.g. trained:iterative vs base:bm25); "
        "then give every run as FOLDER:METHOD",
    )
    p.add_argument("--names", default=None, help="comma list of names for the runs (default: folder names)")
    p.add_argument(
        "--methods", default=None, help="comma list of methods to compare (default: all in common)"
    )
    p.add_argument("--out", "-o", required=True, help="folder for compare.json, compare.md, compare.png")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:

    names = [n.strip() for n in args.names.split(",")] if args.names else [Path(r).name for r in args.runs]
    if not args.names and len(set(names)) != len(names):
        names = [f"{i + 1}:{r}" for i, r in enumerate(args.runs)]  # folder names collide: number them
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    try:
        selected = [split_run_ref(r)[1] is not None for r in args.runs]
        if any(selected) and not all(selected):
            raise CompareError("give every run as FOLDER:METHOD, or none (methods then pair by name)")
        docs = [load_run(r) for r in args.runs]
        doc = compare(docs, names, methods, seed=args.seed)
    except CompareError as exc:
        raise CLIError(str(exc)) from None
    written = write(doc, args.out, sources=args.runs)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    for r in doc["rows"]:
        parts = [f"{n}={_pct(v)}" for n, v in zip(names, r["value"])]
        print(f"{r['task']} {r['method']} ({r['measure']} x100): " + " ".join(parts), file=sys.stderr)
    return 0
