"""The ``iranker`` command line.

Every subcommand turns bad input into one clear error line and a non-zero exit (never a
traceback), and writes output files atomically: results go to ``FILE.partial`` while they are
produced and are renamed to ``FILE`` only when complete, so an interrupted run never leaves a
file that looks finished. ``--resume`` continues from the ``.partial`` file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """A user-facing error: printed as ``iranker: error: <message>``, exit code 2."""


# -- shared options -----------------------------------------------------------------------------
def add_backend_args(p: argparse.ArgumentParser, *, default_max_new_tokens: int = 256) -> None:
    """The options every model-using subcommand shares."""
    from .llm import BACKENDS, DEFAULT_MODEL

    g = p.add_argument_group("model")
    g.add_argument("--model", default=None,
                   help=f"model: alias ({DEFAULT_MODEL} = the trained ranker shipped in iranker, default; "
                        "smollm2-135m = its untrained base), HF id, local folder, .gguf file or "
                        "trained adapter folder; for --backend openai the server's model name; "
                        "for --backend scripted 'last' or 'first'")
    g.add_argument("--backend", choices=BACKENDS, default="transformers",
                   help="LLM backend (default: transformers)")
    g.add_argument("--base-url", default=None,
                   help="OpenAI-compatible server URL for --backend openai (e.g. http://localhost:8000/v1)")
    g.add_argument("--tokenizer", default=None, metavar="MODEL",
                   help="for --backend openai: the served model as iranker names it locally (e.g. "
                        "iranker-135m or a trained folder); its tokenizer renders prompts and tokenises "
                        "labels like the local backend, and a trained folder's templates and ranking "
                        "mode (decode=choice) apply")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the transformers backend (default: $IRANKER_THREADS, else the cores "
                        "no other process is busy on when the model loads, at least 1)")
    g.add_argument("--batch-size", type=int, default=8, help="examples ranked together per backend call")
    g.add_argument("--max-new-tokens", type=int, default=default_max_new_tokens,
                   help=f"generation budget per answer (default: {default_max_new_tokens})")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--seed", type=int, default=0, help="seed for sampling and random fallbacks")
    g.add_argument("--response-prefix", default=None, metavar="TEXT",
                   help="start every reply with TEXT (e.g. '<think>'), which the model continues; the "
                        "parsed answer is TEXT + generated text. Default: the prompt templates' own "
                        "(a folder trained with a prefix records it; none otherwise)")


def add_method_args(p: argparse.ArgumentParser) -> None:
    from .rankers import FALLBACKS

    g = p.add_argument_group("ranking")
    g.add_argument("--method", choices=("iterative", "direct"), default="iterative",
                   help="iterative elimination (default) or one-call direct ranking")
    g.add_argument("--decode", choices=("generate", "choice"), default=None,
                   help="iterative only: generate an answer or score the labels in one forward pass "
                        "(default: what the model records - choice for a choice-trained model such as "
                        "the default iranker-135m - else generate)")
    g.add_argument("--fallback", choices=FALLBACKS, default="closest",
                   help="when an answer names no candidate after re-asking: closest (default), last, random, error")
    g.add_argument("--reask", type=int, default=1, help="re-ask this many times before the fallback (default 1)")
    g.add_argument("--reuse", choices=("none", "kv"), default=None,
                   help="iterative only: none = re-send the whole prompt every step (exact); "
                        "kv = prefill it once and evict eliminated candidates from the KV cache "
                        "(transformers backend). Default: what the model records, else none")


def add_thoughts_args(p: argparse.ArgumentParser) -> None:
    """``--thoughts STORE [--thoughts-k K]``: retrieved thoughts as worked examples (rank, eval, serve)."""
    g = p.add_argument_group("thoughts (IRanker-COT)")
    g.add_argument("--thoughts", default=None, metavar="STORE",
                   help="a store made by `iranker thoughts collect`: each example's prompt header shows "
                        "the K stored thoughts of the same scenario whose queries are most similar "
                        "(never the example's own); see docs/thoughts.md")
    g.add_argument("--thoughts-k", type=int, default=None, metavar="K",
                   help="thoughts shown per example (default 3; needs --thoughts)")


def thoughts_from_args(args: argparse.Namespace):
    """The ``ThoughtMemory`` of ``--thoughts`` (None without it), checked before any model loads.

    A missing folder, a corrupt manifest or a matrix that does not match becomes one
    ``CLIError`` line. The memory is kept on ``args.thoughts_memory`` so it is opened once.
    """
    if getattr(args, "thoughts_memory", None) is not None:
        return args.thoughts_memory
    store_path, k = getattr(args, "thoughts", None), getattr(args, "thoughts_k", None)
    if not store_path:
        if k is not None:
            raise CLIError("--thoughts-k needs --thoughts STORE")
        return None
    if k is not None and k < 1:
        raise CLIError(f"--thoughts-k must be >= 1, got {k}")
    from .llm.base import MissingExtraError
    from .thoughts.retrieval import ThoughtMemory
    from .thoughts.store import ThoughtStoreError, load_store

    try:
        memory = ThoughtMemory(load_store(store_path), threads=getattr(args, "threads", None))
    except ThoughtStoreError as exc:
        raise CLIError(str(exc)) from None
    try:
        memory.dense.encoder  # load the store's embedding model now: a missing one fails before the LLM loads
    except (MissingExtraError, OSError, ValueError) as exc:
        raise CLIError(f"{store_path}: cannot load its embedding model {memory.store.model!r}: {exc}") from None
    args.thoughts_memory = memory
    return memory


def with_thoughts(ranker, args: argparse.Namespace):
    """``ranker`` wrapped to show retrieved thoughts when ``--thoughts`` is given, else itself."""
    memory = thoughts_from_args(args)
    if memory is None:
        return ranker
    from .thoughts.retrieval import DEFAULT_K, ThoughtsRanker

    return ThoughtsRanker(ranker, memory, getattr(args, "thoughts_k", None) or DEFAULT_K)


def backend_from_args(args: argparse.Namespace):
    """Build the backend the options describe; errors become ``CLIError``."""
    from .llm import BackendError, MissingExtraError, load_backend

    kwargs: dict[str, Any] = {}
    if args.backend == "transformers" and args.threads:
        kwargs["threads"] = args.threads
    if args.backend == "openai" and args.base_url:
        kwargs["base_url"] = args.base_url
    if args.backend != "openai" and args.base_url:
        raise CLIError("--base-url only applies to --backend openai")
    if getattr(args, "tokenizer", None):
        if args.backend != "openai":
            raise CLIError("--tokenizer only applies to --backend openai")
        kwargs["tokenizer"] = args.tokenizer
    try:
        return load_backend(args.backend, args.model, **kwargs)
    except (BackendError, MissingExtraError, ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None


def model_identity_from_args(args: argparse.Namespace) -> dict[str, object]:
    """``model_identity`` of the model the options name, for the local backends (the weights
    ``transformers``/``vllm`` load from disk); empty for other backends and untrained models.
    ``eval`` and ``rank --resume`` record it when it is not empty, so their settings from
    before it existed, or of an untrained model, compare equal."""
    if getattr(args, "backend", None) not in ("transformers", "vllm"):
        return {}
    from .llm import DEFAULT_MODEL
    from .llm.models import model_identity

    return model_identity(getattr(args, "model", None) or DEFAULT_MODEL)


def with_response_prefix(templates: dict, prefix: str | None) -> dict:
    """``templates`` (scenario -> PromptTemplate) with every scenario's ``response_prefix`` set.

    ``prefix=None`` leaves them as they are; scenarios without a template get their default
    one with the prefix, so the override applies to every scenario.
    """
    if prefix is None:
        return templates
    import dataclasses

    from .scenarios import SCENARIO_CLASSES, get_scenario

    return {name: dataclasses.replace(templates.get(name) or get_scenario(name).template, response_prefix=prefix)
            for name in SCENARIO_CLASSES}


def ranker_from_args(args: argparse.Namespace, backend, *, show_progress: bool = True):
    from .rankers import DirectRanker, IterativeRanker

    common = dict(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                  temperature=args.temperature, seed=args.seed, show_progress=show_progress)
    templates = with_response_prefix(getattr(backend, "templates", None) or {},
                                     getattr(args, "response_prefix", None))
    common["templates"] = templates
    try:
        if args.method == "direct":
            ranker = DirectRanker(backend, reask=args.reask, **common)
        else:
            ranker = IterativeRanker(backend, decode=getattr(args, "decode", None), fallback=args.fallback,
                                     reask=args.reask, reuse=getattr(args, "reuse", None), **common)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    from .signals.command import with_signals

    return with_signals(with_thoughts(ranker, args), args, backend,
                        compute=not getattr(args, "signals_attached", False))


# -- atomic JSONL output ------------------------------------------------------------------------
class AtomicJSONL:
    """Append records to ``path.partial``; ``commit()`` renames it to ``path``.

    With ``resume=True`` the records already in ``path.partial`` are kept and their ids are
    available as ``done``, so an interrupted run continues where it stopped.
    """

    def __init__(self, path: str | Path, *, resume: bool = False, key: str = "id") -> None:
        from .jsonl_store import JSONLStore

        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._store = JSONLStore(self.partial, key=key, resume=resume)
        self.done: dict[str, dict] = dict(self._store.records)

    def write(self, record: dict) -> None:
        self._store.append([record])

    def commit(self) -> None:
        self._store.close()
        os.replace(self.partial, self.path)

    def close(self) -> None:
        self._store.close()


# -- rank ---------------------------------------------------------------------------------------
def check_backend_args(args: argparse.Namespace) -> None:
    """Refuse settings that cannot work, before any model loads (one error line each)."""
    import math

    for name, low in (("max_new_tokens", 1), ("batch_size", 1), ("reask", 0), ("threads", 1)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise CLIError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    temperature = getattr(args, "temperature", None)
    if temperature is not None and (not math.isfinite(temperature) or temperature < 0):
        raise CLIError(f"--temperature must be a finite number >= 0, got {temperature}")


def run_files(output: str | os.PathLike[str]) -> list[Path]:
    """Every file ``iranker rank -o OUTPUT`` writes, renames or removes: ``OUTPUT``, its
    ``.partial``, the settings file ``.partial.json``, the lock ``.partial.lock`` and the
    ``.tmp`` files they are written through. None of them may be the input."""
    out = Path(output)
    partial = out.with_name(out.name + ".partial")
    sidecar = _settings_file(partial)
    return [out, partial, sidecar, partial.with_name(partial.name + ".lock"),
            partial.with_name(partial.name + ".tmp"), sidecar.with_name(sidecar.name + ".tmp")]


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name one file (through symlinks and hard links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def check_writable_folder(folder: Path, flag: str, value: str) -> None:
    """Refuse an output whose folder is missing, is a file or cannot be written (read-only
    filesystem, no permission), before anything is created: one line naming the path."""
    if not folder.exists():
        raise CLIError(f"{flag} {value!r}: the folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CLIError(f"{flag} {value!r}: {str(folder)!r} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        reason = "read-only filesystem" if _read_only(folder) else "no permission to write there"
        raise CLIError(f"{flag} {value!r}: cannot write in {str(folder)!r} ({reason})")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # pragma: no cover - no statvfs (Windows)
        return False


def _check_output_path(args: argparse.Namespace) -> None:
    out = Path(args.output)
    if out.is_dir():
        raise CLIError(f"--output {args.output!r} is a folder; give a file name such as {out / 'rankings.jsonl'}")
    if isinstance(args.input, (str, os.PathLike)) and Path(args.input).exists():
        for path in run_files(out):
            if same_file(args.input, path):
                what = "is the input file" if path == out else f"would write {path.name}, which is the input file"
                raise CLIError(f"--output {args.output!r} {what}; writing it would destroy the input "
                               "(choose another --output)")
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
    import json

    from .types import Ranking

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
            raise CLIError(f"{where}: not a ranking record ({type(exc).__name__}: {exc}); "
                           "delete the .partial file or drop --resume to start afresh") from None
        problem = _record_problem(rec, by_id)
        if problem is None:
            try:
                Ranking.from_dict(rec)
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"its steps do not read back ({exc})"
        if problem is None and str(rec["id"]) in done:
            problem = f"id {rec['id']!r} is already on line {done[str(rec['id'])]}"
        if problem is not None:
            raise CLIError(f"{where}: not a ranking of this input: {problem}; delete the .partial file "
                           "or drop --resume to start afresh")
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
    from .sharding.command import check_ray_args

    check_backend_args(args)
    check_ray_args(args)
    if getattr(args, "ray", None) is None:
        return _rank(args, lambda: ranker_from_args(args, backend_from_args(args), show_progress=False))
    from .sharding.command import RaySession, rank_ranker  # the same ranker, built on every Ray worker

    session = RaySession(args)
    try:
        return _rank(args, lambda: session.ranker(rank_ranker))
    finally:
        session.close()


def _rank(args: argparse.Namespace, make_ranker) -> int:
    """``iranker rank`` with the ranker ``make_ranker()`` builds (in this process or on Ray workers)."""
    from .data.io import DataError, read_examples

    _check_output_path(args)
    limits = limits_from_args(args)
    thoughts_from_args(args)  # a bad store fails here, before any model loads
    try:
        examples = read_examples(args.input, limits=limits)
    except DataError as exc:
        raise CLIError(str(exc)) from None
    from .signals.command import preflight_from_args

    preflight_from_args(args, examples)  # signals the model was not trained with: refused before it loads
    partial = Path(args.output).with_name(Path(args.output).name + ".partial")
    from .jsonl_store import ExclusiveLock, StoreBusy

    files = run_files(args.output)[1:]
    existed = {f for f in files if f.exists()}
    leave_files = False  # True once the run ranked, or when the files are another run's
    lock = ExclusiveLock(partial.with_name(partial.name + ".lock"),
                         f"another iranker rank is writing {args.output}; wait for it or choose another -o")
    try:
        try:
            lock.__enter__()
        except OSError as exc:
            raise _output_error(exc) from None
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
        raise CLIError(f"--output {args.output!r}: cannot write {exc.filename or partial}: "
                       f"{exc.strerror or exc}") from None
    finally:
        if not leave_files:
            _remove_created(files, existed, partial)


def _remove_created(files: list[Path], existed: set[Path], partial: Path) -> None:
    """After a failed run, remove the files it created, unless ``.partial`` holds rankings
    (then they and their settings stay for ``--resume``): a refused run leaves nothing."""
    keep_partial = partial not in existed and partial.is_file() and partial.stat().st_size > 0
    for f in files:
        if f in existed or (keep_partial and f in (partial, _settings_file(partial))):
            continue
        try:
            f.unlink(missing_ok=True)
        except OSError:  # pragma: no cover - a read-only folder never had them
            pass


def add_limit_args(p: argparse.ArgumentParser) -> None:
    """``--max-candidates`` / ``--max-candidate-chars`` (rank, eval --input)."""
    from .example_fields import MAX_CANDIDATE_CHARS, MAX_CANDIDATES

    g = p.add_argument_group("input limits")
    g.add_argument("--max-candidates", type=int, default=MAX_CANDIDATES, metavar="N",
                   help=f"refuse an example with more than N candidates (default {MAX_CANDIDATES}; "
                        "elimination work grows as N²)")
    g.add_argument("--max-candidate-chars", type=int, default=MAX_CANDIDATE_CHARS, metavar="N",
                   help=f"refuse a candidate text longer than N characters (default {MAX_CANDIDATE_CHARS})")


def limits_from_args(args: argparse.Namespace):
    """The ``ExampleLimits`` of ``--max-candidates`` / ``--max-candidate-chars``."""
    from .example_fields import ExampleLimits

    for name, low in (("max_candidates", 2), ("max_candidate_chars", 1)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise CLIError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    return ExampleLimits(getattr(args, "max_candidates", None), getattr(args, "max_candidate_chars", None))


def _output_error(exc: OSError) -> OSError:
    """Mark an ``OSError`` raised while creating the output files (reported as a user error)."""
    exc.iranker_output = True  # type: ignore[attr-defined]
    return exc


#: The arguments that decide what a ranking is: a resumed run must use the same ones, or its
#: output would mix rankings of two settings. (Threads, batch size, paths and --quiet do not.)
RANK_SETTINGS = ("backend", "model", "method", "decode", "reuse", "fallback", "reask", "temperature",
                 "seed", "max_new_tokens", "response_prefix", "thoughts", "thoughts_k", "signals",
                 "interactions", "outcomes", "outcomes_k")


def _rank_settings(args: argparse.Namespace, examples) -> dict:
    import hashlib
    import json

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
    import json

    from .jsonl_store import settings_differences

    sidecar = _settings_file(partial)
    try:
        old = json.loads(sidecar.read_text(encoding="utf-8"))["settings"]
    except FileNotFoundError:
        raise CLIError(f"{partial} has no settings file {sidecar.name} (made by another version or "
                       "tool): cannot check it matches this run; delete it to start afresh") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CLIError(f"{sidecar} is not a valid settings file ({exc}); delete {partial} to start afresh") from None
    diffs = settings_differences(old, settings)
    if diffs:
        raise CLIError(f"{partial} was made with other settings ({'; '.join(diffs)}); rerun with those, "
                       "or drop --resume to start afresh")


def _settings_file(partial: Path) -> Path:
    """``OUT.partial.json``: the settings a ``.partial`` was made with."""
    return partial.with_name(partial.name + ".json")


def _record_settings(partial: Path, settings: dict) -> None:
    import json

    sidecar = _settings_file(partial)
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps({"settings": settings}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, sidecar)


def _rank_locked(args: argparse.Namespace, examples, partial: Path, make_ranker) -> int:
    from .rankers.base import progress_bar, ranked_chunks

    settings = _rank_settings(args, examples)
    if args.resume and partial.exists():
        _check_resume_settings(partial, settings)
    resumable = _resumable_records(partial, examples) if args.resume else set()
    todo_ids = [ex.id for ex in examples if ex.id not in resumable]
    ranker = None
    if todo_ids:  # a bad --model, an unreachable server or Ray cluster fails here, before any output file exists
        ranker = make_ranker()
    try:  # the settings first: a kill between the two never leaves a .partial that cannot resume
        _record_settings(partial, settings)
        out = AtomicJSONL(args.output, resume=args.resume)
    except OSError as exc:
        raise _output_error(exc) from None
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
        print(f"interrupted: {len(rankings_by_id)} rankings kept in {out.partial}; rerun with --resume",
              file=sys.stderr)
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
    from .metrics import evaluate
    from .types import Ranking

    by_scenario: dict[str, list] = {}
    for ex, rec in labelled:
        by_scenario.setdefault(ex.scenario, []).append((ex, Ranking.from_dict(rec)))
    for scenario, pairs in sorted(by_scenario.items()):
        # the rule `iranker eval` reports with: an example without a relevant candidate scores 0
        res = evaluate([r for _, r in pairs], [e for e, _ in pairs], measures=("MRR", "NDCG@5"), no_positive="zero")
        means = res["mean"]
        none = f" ({res['n_without_positive']} without a relevant candidate, scored 0)" if res["n_without_positive"] else ""
        print(f"{scenario}: n={len(pairs)} " + " ".join(f"{k}={v:.3f}" for k, v in means.items()) + none,
              file=sys.stderr)


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iranker",
        description="Rank candidates with an LLM by iterative elimination "
                    "(recommendation, LLM routing, passage re-ranking).",
    )
    parser.add_argument("--version", action="version", version=f"iranker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("rank", help="rank the examples of a JSONL file",
                       description="Each input line: {\"id\", \"scenario\", \"query\", \"candidates\": "
                                   "[{\"id\", \"text\"}...], \"relevance\"?: {...}}. Each output line: "
                                   "{\"id\", \"ranking\": [ids, best first], \"steps\", \"usage\"}.")
    p.add_argument("--input", "-i", required=True, help="examples JSONL ('-' for stdin)")
    p.add_argument("--output", "-o", required=True, help="rankings JSONL (written atomically)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT.partial")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_limit_args(p)
    add_backend_args(p)
    add_method_args(p)
    add_thoughts_args(p)
    from .signals.command import add_signals_args

    add_signals_args(p)
    from .sharding.command import add_ray_args

    add_ray_args(p)
    p.set_defaults(func=cmd_rank)

    _add_module_subcommands(sub)
    return parser


#: Subcommands defined in their own modules (each with an ``add_parser(subparsers)``), and the
#: commands each adds. These modules import only the core; optional parts (fastapi, trl, ...)
#: are imported when a command runs, so an import failure here is a broken install. It must not
#: make a command vanish from ``--help`` (a user then reads "invalid choice"): the command stays
#: and running it names the cause.
SUBCOMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "demo": ("demo",),
    "serve.command": ("serve",),
    "data.steps_command": ("data",),
    "train.command": ("train", "export-verl"),
    "evaluation.command": ("eval",),
    "evaluation.compare": ("compare",),
    "evaluation.ood": ("ood",),
    "thoughts.command": ("thoughts",),
}


def _add_module_subcommands(sub) -> None:
    import importlib

    for name, commands in SUBCOMMAND_MODULES.items():
        try:
            module = importlib.import_module(f".{name}", __package__)
        except ImportError as exc:
            for command in commands:
                _add_broken_subcommand(sub, command, name, exc)
            continue
        module.add_parser(sub)


def _add_broken_subcommand(sub, command: str, module: str, exc: ImportError) -> None:
    cause = f"{type(exc).__name__}: {exc}"

    def fail(args: argparse.Namespace) -> int:
        raise CLIError(f"`iranker {command}` is unavailable: importing iranker.{module} failed ({cause}); "
                       "reinstall iranker (pip install -e .) or set IRANKER_DEBUG=1 and report the error")

    p = sub.add_parser(command, help=f"(unavailable: {cause})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=fail)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if getattr(args, "input", None) == "-":
        args.input = sys.stdin
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"iranker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("iranker: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        from .data.io import DataError
        from .llm import BackendError, MissingExtraError
        from .rankers import UnparsableAnswerError
        from .scenarios import TemplateError

        from .signals.schema import SignalError
        from .thoughts.store import ThoughtStoreError

        if isinstance(exc, (DataError, BackendError, MissingExtraError, UnparsableAnswerError, TemplateError,
                            ThoughtStoreError, SignalError)):
            print(f"iranker: error: {exc}", file=sys.stderr)
            return EXIT_USAGE if isinstance(exc, DataError) else EXIT_ERROR
        if os.environ.get("IRANKER_DEBUG"):
            raise
        print(f"iranker: internal error: {type(exc).__name__}: {exc} "
              "(set IRANKER_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    # `python -m iranker.cli` runs this file as __main__; the subcommand modules raise
    # iranker.cli.CLIError, so run the imported module's main for their errors to be caught
    from iranker.cli import main as _main

    sys.exit(_main())
