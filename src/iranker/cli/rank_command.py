"""``iranker rank``: rank the examples of a JSONL file, resumably.

Rankings are appended to ``OUTPUT.partial`` beside the settings they were made with
(``OUTPUT.partial.json``) under a lock; ``--resume`` continues a cut run only with the same
input and settings, and every kept line is checked against the input first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ..atomic_files import atomic_write_text
from ..data.io import DataError, read_examples
from ..jsonl_store import ExclusiveLock, StoreBusy, settings_differences
from ..metrics import evaluate
from ..rankers.base import progress_bar, ranked_chunks
from ..sharding.command import add_ray_args, check_ray_args
from ..signals.command import add_signals_args, preflight_from_args
from ..types import Ranking
from .building import backend_from_args, model_identity_from_args, ranker_from_args
from .errors import EXIT_OK, CLIError
from .options import (
    add_backend_args,
    add_limit_args,
    add_method_args,
    add_thoughts_args,
    check_backend_args,
    limits_from_args,
    thoughts_from_args,
)
from .output import AtomicJSONL, check_writable_folder, output_error, run_files, same_file, settings_file


def add_parser(sub: Any) -> None:
    """Add ``iranker rank`` to an argparse ``subparsers`` object."""

    p = sub.add_parser(
        "rank",
        help="rank the examples of a JSONL file",
        description='Each input line: {"id", "scenario", "query", "candidates": '
        '[{"id", "text"}...], "relevance"?: {...}}. Each output line: '
        '{"id", "ranking": [ids, best first], "steps", "usage"}.',
    )
    p.add_argument("--input", "-i", required=True, help="examples JSONL ('-' for stdin)")
    p.add_argument("--output", "-o", required=True, help="rankings JSONL (written atomically)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT.partial")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_limit_args(p)
    add_backend_args(p)
    add_method_args(p)
    add_thoughts_args(p)
    add_signals_args(p)
    add_ray_args(p)
    p.set_defaults(func=cmd_rank)


def _check_output_path(args: argparse.Namespace) -> None:
    out = Path(args.output)
    if out.is_dir():
        raise CLIError(
            f"--output {args.output!r} is a folder; give a file name such as {out / 'rankings.jsonl'}"
        )
    if isinstance(args.input, (str, os.PathLike)) and Path(args.input).exists():
        for path in run_files(out):
            if same_file(args.input, path):
                what = (
                    "is the input file"
                    if path == out
                    else f"would write {path.name}, which is the input file"
                )
                raise CLIError(
                    f"--output {args.output!r} {what}; writing it would destroy the input "
                    "(choose another --output)"
                )
    check_writable_folder(out.parent, "--output", args.output)


def _resumable_records(partial: Path, examples) -> set[str]:
    """Ids of the finished rankings in a ``.partial`` file, each checked against the input.

    A record must belong to this input: a JSON object whose ``id`` is an example of the input
    (once), whose ``ranking`` is a permutation of that example's candidate ids and whose
    ``steps`` read back as steps. Anything else (a foreign, forged or hand-edited line) is
    refused with its line number, before any output is written: keeping it would commit it,
    dropping it would hide it. Only a last line cut short by a kill (no newline, not JSON) is
    what an interrupted append leaves; it is dropped (the store rewrites the file without it).
    """

    if not partial.is_file():
        return set()
    by_id = {ex.id: ex for ex in examples}
    data = partial.read_bytes()
    lines = data.split(b"\n")
    done: dict[str, int] = {}
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{partial}:{lineno}"
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            if lineno == len(lines):  # the last line, without its newline: a write cut by a kill
                continue
            raise CLIError(
                f"{where}: not a ranking record ({type(exc).__name__}: {exc}); "
                "delete the .partial file or drop --resume to start afresh"
            ) from None
        problem = _record_problem(rec, by_id)
        if problem is None:
            try:
                Ranking.from_dict(rec)
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"its steps do not read back ({exc})"
        if problem is None and str(rec["id"]) in done:
            problem = f"id {rec['id']!r} is already on line {done[str(rec['id'])]}"
        if problem is not None:
            raise CLIError(
                f"{where}: not a ranking of this input: {problem}; delete the .partial file "
                "or drop --resume to start afresh"
            )
        done[str(rec["id"])] = lineno
    return set(done)


def _record_problem(rec, by_id: dict) -> str | None:
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__}"
    rid = rec.get("id")
    if not isinstance(rid, str) or rid not in by_id:
        return f"id {rid!r} is not an example of the input"
    ranking = rec.get("ranking")
    if not isinstance(ranking, list) or not all(isinstance(c, str) for c in ranking):
        return "'ranking' is not a list of candidate ids"
    if sorted(ranking) != sorted(by_id[rid].candidate_ids):
        return f"'ranking' of {rid!r} is not a permutation of its candidates"
    if not isinstance(rec.get("steps", []), list) or not isinstance(rec.get("usage", {}), dict):
        return "'steps' must be a list and 'usage' an object"
    return None


def cmd_rank(args: argparse.Namespace) -> int:

    check_backend_args(args)
    check_ray_args(args)
    if getattr(args, "ray", None) is None:
        return _rank(args, lambda: ranker_from_args(args, backend_from_args(args), show_progress=False))
    from ..sharding.command import RaySession, rank_ranker  # the same ranker, built on every Ray worker

    session = RaySession(args)
    try:
        return _rank(args, lambda: session.ranker(rank_ranker))
    finally:
        session.close()


def _rank(args: argparse.Namespace, make_ranker) -> int:
    """``iranker rank`` with the ranker ``make_ranker()`` builds (in this process or on Ray workers)."""

    _check_output_path(args)
    limits = limits_from_args(args)
    thoughts_from_args(args)  # a bad store fails here, before any model loads
    try:
        examples = read_examples(args.input, limits=limits)
    except DataError as exc:
        raise CLIError(str(exc)) from None

    preflight_from_args(args, examples)  # signals the model was not trained with: refused before it loads
    partial = Path(args.output).with_name(Path(args.output).name + ".partial")

    files = run_files(args.output)[1:]
    existed = {f for f in files if f.exists()}
    leave_files = False  # True once the run ranked, or when the files are another run's
    lock = ExclusiveLock(
        partial.with_name(partial.name + ".lock"),
        f"another iranker rank is writing {args.output}; wait for it or choose another -o",
    )
    try:
        try:
            lock.__enter__()
        except OSError as exc:
            raise output_error(exc) from None
        try:
            rc = _rank_locked(args, examples, partial, make_ranker)
        finally:
            lock.__exit__(None, None, None)
        leave_files = True
        return rc
    except StoreBusy as exc:
        # every file there belongs to the run that holds the lock (it may have created its
        # .partial a moment ago, after this run looked): a refused run touches none of them
        leave_files = True
        raise CLIError(str(exc)) from None
    except OSError as exc:
        if not getattr(exc, "iranker_output", False):
            raise
        raise CLIError(
            f"--output {args.output!r}: cannot write {exc.filename or partial}: {exc.strerror or exc}"
        ) from None
    finally:
        if not leave_files:
            _remove_created(files, existed, partial)


def _remove_created(files: list[Path], existed: set[Path], partial: Path) -> None:
    """After a failed run, remove the files it created, unless ``.partial`` holds rankings
    (then they and their settings stay for ``--resume``): a refused run leaves nothing."""
    keep_partial = partial not in existed and partial.is_file() and partial.stat().st_size > 0
    for f in files:
        if f in existed or (keep_partial and f in (partial, settings_file(partial))):
            continue
        try:
            f.unlink(missing_ok=True)
        except OSError:  # pragma: no cover - a read-only folder never had them
            pass


#: The arguments that decide what a ranking is: a resumed run must use the same ones, or its
#: output would mix rankings of two settings. (Threads, batch size, paths and --quiet do not.)
RANK_SETTINGS = (
    "backend",
    "model",
    "method",
    "decode",
    "reuse",
    "prune",
    "fallback",
    "reask",
    "temperature",
    "seed",
    "max_new_tokens",
    "response_prefix",
    "thoughts",
    "thoughts_k",
    "signals",
    "interactions",
    "outcomes",
    "outcomes_k",
)


def _rank_settings(args: argparse.Namespace, examples) -> dict:

    h = hashlib.sha256()
    for ex in examples:  # the parsed examples, so stdin and a re-saved file hash alike
        h.update(json.dumps(ex.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    settings = {"input_sha256": h.hexdigest(), **{k: getattr(args, k, None) for k in RANK_SETTINGS}}
    identity = model_identity_from_args(args)
    if identity:  # a trained folder: its weights, not only its name (an alias may change)
        settings["model_identity"] = identity
    if getattr(args, "tokenizer", None):  # only when set, so older .partial files still resume
        settings["tokenizer"] = args.tokenizer
    return settings


def _check_resume_settings(partial: Path, settings: dict) -> None:
    """Refuse to resume a ``.partial`` made from another input or with other settings."""

    sidecar = settings_file(partial)
    try:
        old = json.loads(sidecar.read_text(encoding="utf-8"))["settings"]
    except FileNotFoundError:
        raise CLIError(
            f"{partial} has no settings file {sidecar.name} (made by another version or "
            "tool): cannot check it matches this run; delete it to start afresh"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CLIError(
            f"{sidecar} is not a valid settings file ({exc}); delete {partial} to start afresh"
        ) from None
    diffs = settings_differences(old, settings)
    if diffs:
        raise CLIError(
            f"{partial} was made with other settings ({'; '.join(diffs)}); rerun with those, "
            "or drop --resume to start afresh"
        )


def _record_settings(partial: Path, settings: dict) -> None:

    atomic_write_text(
        settings_file(partial), json.dumps({"settings": settings}, indent=2, ensure_ascii=False) + "\n"
    )


def _rank_locked(args: argparse.Namespace, examples, partial: Path, make_ranker) -> int:

    settings = _rank_settings(args, examples)
    if args.resume and partial.exists():
        _check_resume_settings(partial, settings)
    resumable = _resumable_records(partial, examples) if args.resume else set()
    todo_ids = [ex.id for ex in examples if ex.id not in resumable]
    ranker = None
    if (
        todo_ids
    ):  # a bad --model, an unreachable server or Ray cluster fails here, before any output file exists
        ranker = make_ranker()
    try:  # the settings first: a kill between the two never leaves a .partial that cannot resume
        _record_settings(partial, settings)
        out = AtomicJSONL(args.output, resume=args.resume)
    except OSError as exc:
        raise output_error(exc) from None
    todo = [ex for ex in examples if ex.id not in out.done]
    if out.done:
        print(f"resuming: {len(examples) - len(todo)} of {len(examples)} already ranked", file=sys.stderr)
    rankings_by_id = {k: v for k, v in out.done.items()}
    try:
        if todo:
            if ranker is None:
                ranker = make_ranker()
            bar = progress_bar(len(todo), f"rank ({ranker.name})", enabled=not args.quiet)
            step = max(1, args.batch_size)
            for ranked in ranked_chunks(ranker, [todo[i : i + step] for i in range(0, len(todo), step)]):
                for r in ranked.rankings:
                    rec = r.to_dict()
                    out.write(rec)
                    rankings_by_id[r.example_id] = rec
                bar.update(len(ranked.examples))
            bar.close()
        out.commit()
        for leftover in (".json", ".lock"):  # done: no settings to check, and (still locked) no lock file
            partial.with_name(partial.name + leftover).unlink(missing_ok=True)
    except KeyboardInterrupt:
        out.close()
        print(
            f"interrupted: {len(rankings_by_id)} rankings kept in {out.partial}; rerun with --resume",
            file=sys.stderr,
        )
        return 130
    except BaseException:
        out.close()
        if rankings_by_id:
            print(f"partial results kept in {out.partial}; rerun with --resume to continue", file=sys.stderr)
        raise
    print(f"wrote {len(examples)} rankings to {args.output}", file=sys.stderr)
    _print_metrics(examples, [rankings_by_id[ex.id] for ex in examples])
    return EXIT_OK


def _print_metrics(examples, records: Sequence[dict]) -> None:
    """Print MRR/NDCG per scenario on stderr when the input carries relevance labels."""
    labelled = [(ex, rec) for ex, rec in zip(examples, records) if ex.relevance]
    if not labelled:
        return

    by_scenario: dict[str, list] = {}
    for ex, rec in labelled:
        by_scenario.setdefault(ex.scenario, []).append((ex, Ranking.from_dict(rec)))
    for scenario, pairs in sorted(by_scenario.items()):
        # the rule `iranker eval` reports with: an example without a relevant candidate scores 0
        res = evaluate(
            [r for _, r in pairs], [e for e, _ in pairs], measures=("MRR", "NDCG@5"), no_positive="zero"
        )
        means = res["mean"]
        none = (
            f" ({res['n_without_positive']} without a relevant candidate, scored 0)"
            if res["n_without_positive"]
            else ""
        )
        print(
            f"{scenario}: n={len(pairs)} " + " ".join(f"{k}={v:.3f}" for k, v in means.items()) + none,
            file=sys.stderr,
        )


__all__ = ["RANK_SETTINGS", "add_parser", "cmd_rank"]
