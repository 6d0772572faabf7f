"""The ten tasks: ``build_task(name, data_dir, split, seed, limit)`` -> :class:`TaskData`.

| task | scenario | source (first found under ``data_dir``) | split rule |
|---|---|---|---|
| rec-movie | recommendation | ml-1m UniSRec test split (or ``ratings.dat``, or RecBole atomic) | users hashed 80/20 train/test |
| rec-music | recommendation | Amazon CDs R3 ``test``/``valid`` CSVs (or Amazon 2018 JSON) | R3's time split: test CSV users = test; valid CSV users not in test = train |
| rec-game | recommendation | LLMRank Games-6k test split (or Amazon 2018 JSON) | users hashed 80/20 train/test |
| router-heldout-performance / -balance / -cost | routing | the same dcrouter files | as router-*, but train pools drop 3 LLMs (``HELD_OUT_LLMS``) that every test pool holds |
| router-performance / -balance / -cost | routing | LLMRouter dcrouter ``test.json`` / ``train.json`` (or GraphRouter CSV) | the source's files; train drops questions also in test |
| passage-5 / -7 / -9 | passage | TREC DL19 BM25 top-100 + qrels (test); MS MARCO v1.1 parquet (train) | DL19 is test only; train needs MS MARCO |
| trec-dl19 | passage | TREC DL19 BM25 top-20 + graded qrels | test only |

``data_dir`` is either a root holding the usual sub-folders (``rec_movie/ml-1m_unisrec``,
``router/llmrouter_dcrouter``, ... as in the project's shared data) or the source folder itself.
Every choice that affects results — seed, split rule, stand-ins, skipped examples — is recorded
in ``TaskData.metadata`` so a result table can state it.

Recommendation samples: the 20 most recent titled history items (chronological) -> 20
candidates = the true next item + 19 negatives drawn (seeded) from titled items that are not in
the user's full history and whose title differs from every history title and the target's
(two candidates with the same title could not be told apart). Candidates are shuffled.

Routing samples: the 9 LLMs with scores; utility = w * score - (1 - w) * norm_price, price =
mean of input and output price per 1M tokens, min-max normalised across the 9 LLMs of the query;
best = max utility, ties -> cheaper -> name. Relevance is rank-based: the LLM at position r
(0-based) of that order gets grade n - r (best = 9, worst = 1), so the single best has the
unique highest grade (MRR/Hit@1 use it) and NDCG@k rewards getting the whole order right.
``meta["scores"]``, ``meta["utility"]`` and ``meta["informative"]`` (scores not all equal) keep
the raw labels for baselines and for reporting the informative subset.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from ..example_fields import OBJECTIVE_WEIGHTS, ROUTING_OBJECTIVES
from ..types import Candidate, RankingExample
from .amazon import load_llmrank, load_r3_csv
from .io import write_examples
from .movielens import load_movielens
from .passage import load_qrels, load_trec_run_json
from .routing import (
    grades_from_order,
    load_dcrouter,
    load_graphrouter_csv,
    load_llm_info,
    price_of,
    routing_order,
    routing_utilities,
)
from .sequences import SequenceData
from .splits import rng_for, sample_keys, split_of

__all__ = ["BENCHMARK_TASKS", "TASKS", "TaskData", "TaskSpec", "build_task", "list_tasks"]

#: default share of users held out for test where the source has no user-level split
TEST_FRACTION = 0.2
#: split seed recorded with every task; fixed so changing ``seed`` never moves users across splits
SPLIT_SEED = 0


@dataclass
class TaskData:
    """Examples of one task and split, plus everything needed to report them honestly."""

    name: str
    split: str
    examples: list[RankingExample]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the examples as JSONL and the metadata next to it (``<path>.meta.json``)."""
        p = Path(path)
        write_examples(p, self.examples)
        meta_path = p.with_name(p.name + ".meta.json")
        meta_path.write_text(json.dumps(self.metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return meta_path


@dataclass(frozen=True)
class TaskSpec:
    """A task's registry entry: what it is, where its data usually lives, how it is built."""

    name: str
    scenario: str
    description: str
    splits: tuple[str, ...]
    metric: str
    builder: Callable[..., TaskData]
    options: dict[str, Any] = field(default_factory=dict)
    stand_in: str | None = None


class SourceNotFound(FileNotFoundError):
    """The data a task needs is not under ``data_dir``; the message lists what was looked for."""


def _locate(data_dir: Path, subdirs: Iterable[str], patterns: Iterable[str], what: str) -> Path:
    """The first of ``data_dir/<subdir>`` (or ``data_dir`` itself) holding all ``patterns``."""
    patterns = list(patterns)
    tried = [data_dir / s for s in subdirs] + [data_dir]
    for d in tried:
        if d.is_dir() and all(any(d.glob(p)) for p in patterns):
            return d
    raise SourceNotFound(
        f"{what}: no folder with {patterns} under {data_dir} (looked in {[str(t) for t in tried]})"
    )


def _meta(spec: TaskSpec, split: str, seed: int, limit: int | None, **kw: Any) -> dict[str, Any]:
    return {
        "task": spec.name,
        "scenario": spec.scenario,
        "split": split,
        "seed": seed,
        "split_seed": SPLIT_SEED,
        "limit": limit,
        "metric": spec.metric,
        "stand_in": spec.stand_in,
        **kw,
    }


def _check_split(spec: TaskSpec, split: str) -> None:
    if split not in spec.splits:
        raise ValueError(f"task {spec.name!r} has splits {list(spec.splits)}, not {split!r}")


# ---------------------------------------------------------------------------------------------
# recommendation


def _norm(title: str) -> str:
    return " ".join(title.casefold().split())


def rec_examples(
    task: str,
    data: SequenceData,
    users: list[str],
    *,
    domain: str,
    seed: int,
    n_history: int = 20,
    n_candidates: int = 20,
) -> list[RankingExample]:
    """One example per user: recent titled history -> true next item among seeded negatives.

    ``users`` must be eligible (see :func:`rec_eligible`). Negatives come from ``data.titles``
    (the item universe with usable titles), excluding the user's whole history, the target and
    any item whose title equals one of theirs.
    """
    universe = sorted(data.titles)
    norm = {i: _norm(t) for i, t in data.titles.items()}
    out = []
    for user in users:
        pair = data.target_and_history(user)
        assert pair is not None
        target, history = pair
        titled = [i for i in history if i in data.titles]
        shown = titled[-n_history:]
        banned_items = set(history) | {target}
        banned_titles = {norm[i] for i in titled} | {norm[target]}
        rng = rng_for(seed, task, user)
        negatives: list[str] = []
        seen_titles = set(banned_titles)
        tries = 0
        while len(negatives) < n_candidates - 1:
            tries += 1
            if tries > 100 * n_candidates + 10 * len(universe):
                raise ValueError(
                    f"{task}: user {user}: could not find {n_candidates - 1} negatives among "
                    f"{len(universe)} titled items"
                )
            item = universe[rng.randrange(len(universe))]
            if item in banned_items or norm[item] in seen_titles:
                continue
            negatives.append(item)
            seen_titles.add(norm[item])
        cands = [target, *negatives]
        rng.shuffle(cands)
        titles = [data.titles[i] for i in shown]
        out.append(
            RankingExample(
                id=f"{task}:{user}",
                scenario="recommendation",
                query="\n".join(titles),
                candidates=[Candidate(i, data.titles[i]) for i in cands],
                relevance={target: 1.0},
                meta={
                    "history": titles,
                    "domain": domain,
                    "user": user,
                    "n_history_available": len(titled),
                },
            )
        )
    return out


def rec_eligible(data: SequenceData, min_history: int) -> tuple[list[str], Counter]:
    """Users with a titled target and at least ``min_history`` titled history items."""
    ok, skipped = [], Counter()
    for user in data.histories:
        pair = data.target_and_history(user)
        if pair is None:
            skipped["no target"] += 1
            continue
        target, history = pair
        if target not in data.titles:
            skipped["target has no title"] += 1
            continue
        if sum(1 for i in history if i in data.titles) < min_history:
            skipped[f"fewer than {min_history} titled history items"] += 1
            continue
        ok.append(user)
    return ok, skipped


def _amazon_raw_folder(folder: Path) -> SequenceData | None:
    metas = sorted(p for p in folder.glob("meta_*.json*"))
    reviews = sorted(p for p in folder.glob("*.json*") if not p.name.startswith("meta_"))
    if metas and reviews:
        from .amazon import load_amazon_reviews

        return load_amazon_reviews(reviews[0], metas[0])
    return None


def _history_stats(data: SequenceData, users: list[str], n_history: int) -> dict[str, Any]:
    lengths = [
        min(n_history, sum(1 for i in data.target_and_history(u)[1] if i in data.titles)) for u in users
    ]  # type: ignore[index]
    if not lengths:
        return {}
    return {
        "history_len_min": min(lengths),
        "history_len_max": max(lengths),
        "history_len_mean": round(sum(lengths) / len(lengths), 2),
    }


def _build_rec_user_split(
    spec: TaskSpec,
    data: SequenceData,
    split: str,
    seed: int,
    limit: int | None,
    *,
    min_history: int,
    n_history: int,
    n_candidates: int,
    test_fraction: float,
    source_note: str,
) -> TaskData:
    eligible, skipped = rec_eligible(data, min_history)
    in_split = [u for u in eligible if split_of(u, seed=SPLIT_SEED, test_fraction=test_fraction) == split]
    users = sample_keys(in_split, limit, seed=seed, salt=spec.name)
    examples = rec_examples(
        spec.name,
        data,
        users,
        domain=spec.options["domain"],
        seed=seed,
        n_history=n_history,
        n_candidates=n_candidates,
    )
    return TaskData(
        spec.name,
        split,
        examples,
        _meta(
            spec,
            split,
            seed,
            limit,
            n_examples=len(examples),
            n_in_split=len(in_split),
            n_eligible=len(eligible),
            n_users=len(data.histories),
            n_items_with_title=len(data.titles),
            source=data.source,
            source_note=source_note,
            split_rule=(
                f"users (eligible: >= {min_history} titled history items) assigned by "
                f"sha256(split_seed, user) < {test_fraction} -> test, else train"
            ),
            skipped=dict(skipped),
            notes=list(data.notes),
            n_history=n_history,
            n_candidates=n_candidates,
            **_history_stats(data, users, n_history),
        ),
    )


def _build_rec_movie(
    spec: TaskSpec,
    data_dir: Path,
    split: str,
    seed: int,
    limit: int | None,
    *,
    min_history: int = 20,
    n_history: int = 20,
    n_candidates: int = 20,
    test_fraction: float = TEST_FRACTION,
) -> TaskData:

    folder = None
    for patterns in (
        ["*.test.inter", "*.item2index", "*.text"],
        ["ratings.dat", "movies.dat"],
        ["*.inter", "*.item"],
    ):
        try:
            folder = _locate(
                data_dir,
                ["rec_movie/ml-1m_unisrec", "rec_movie/ml-1m", "ml-1m", "rec_movie"],
                patterns,
                "rec-movie",
            )
            break
        except SourceNotFound:
            continue
    if folder is None:
        raise SourceNotFound(
            f"rec-movie: no MovieLens data under {data_dir} (UniSRec ml-1m.test.inter + .text + "
            ".item2index, GroupLens ratings.dat + movies.dat, or RecBole .inter + .item)"
        )
    data = load_movielens(folder)
    return _build_rec_user_split(
        spec,
        data,
        split,
        seed,
        limit,
        min_history=min_history,
        n_history=n_history,
        n_candidates=n_candidates,
        test_fraction=test_fraction,
        source_note="next item = the source's held-out last item"
        if data.next_item is not None
        else "leave-one-out: last item held out",
    )


def _build_rec_game(
    spec: TaskSpec,
    data_dir: Path,
    split: str,
    seed: int,
    limit: int | None,
    *,
    min_history: int = 20,
    n_history: int = 20,
    n_candidates: int = 20,
    test_fraction: float = TEST_FRACTION,
) -> TaskData:

    subdirs = ["rec_game/Games-6k", "Games-6k", "rec_game"]
    try:
        folder = _locate(data_dir, subdirs, ["*.test.inter", "*.item"], "rec-game")
        data = load_llmrank(folder, split="test")
    except SourceNotFound:
        folder = _locate(data_dir, subdirs, ["meta_*.json*"], "rec-game (Amazon 2018 JSON)")
        data = _amazon_raw_folder(folder)  # type: ignore[assignment]
        if data is None:
            raise
    return _build_rec_user_split(
        spec,
        data,
        split,
        seed,
        limit,
        min_history=min_history,
        n_history=n_history,
        n_candidates=n_candidates,
        test_fraction=test_fraction,
        source_note="next item = the source's held-out last item"
        if data.next_item is not None
        else "leave-one-out: last item held out",
    )


def _build_rec_music(
    spec: TaskSpec,
    data_dir: Path,
    split: str,
    seed: int,
    limit: int | None,
    *,
    min_history: int = 1,
    n_history: int = 20,
    n_candidates: int = 20,
    test_fraction: float = TEST_FRACTION,
) -> TaskData:

    subdirs = ["rec_music/cds_d3_r3", "cds_d3_r3", "rec_music"]
    try:
        folder = _locate(data_dir, subdirs, ["test.*.csv", "valid.*.csv"], "rec-music")
    except SourceNotFound:
        folder = _locate(data_dir, subdirs, ["meta_*.json*"], "rec-music (R3 CSVs or Amazon 2018 JSON)")
        data = _amazon_raw_folder(folder)
        if data is None:
            raise
        return _build_rec_user_split(
            spec,
            data,
            split,
            seed,
            limit,
            min_history=max(min_history, 1),
            n_history=n_history,
            n_candidates=n_candidates,
            test_fraction=test_fraction,
            source_note="leave-one-out: last item held out",
        )
    test_csv = sorted(folder.glob("test.*.csv"))[0]
    test = load_r3_csv(test_csv)
    if split == "test":
        data, excluded = test, 0
        rule = "R3's time split: users of the test CSV (interactions 2018-11 window); one example per user = their latest row"
    else:
        data = load_r3_csv(sorted(folder.glob("valid.*.csv"))[0])
        overlap = set(data.histories) & set(test.histories)
        for u in overlap:
            data.histories.pop(u)
            data.next_item.pop(u)  # type: ignore[union-attr]
        excluded = len(overlap)
        rule = (
            "R3's valid CSV (earlier time window), minus users who also appear in the test CSV "
            "(so train and test users are disjoint); one example per user = their latest row"
        )
    eligible, skipped = rec_eligible(data, min_history)
    users = sample_keys(eligible, limit, seed=seed, salt=spec.name)
    examples = rec_examples(
        spec.name,
        data,
        users,
        domain=spec.options["domain"],
        seed=seed,
        n_history=n_history,
        n_candidates=n_candidates,
    )
    return TaskData(
        spec.name,
        split,
        examples,
        _meta(
            spec,
            split,
            seed,
            limit,
            n_examples=len(examples),
            n_in_split=len(eligible),
            n_eligible=len(eligible),
            n_users=len(data.histories),
            n_items_with_title=len(data.titles),
            source=data.source,
            split_rule=rule,
            users_dropped_overlap_with_test=excluded,
            skipped=dict(skipped),
            notes=list(data.notes)
            + ["R3 rows carry at most 10 history items, so histories are <= 10 (not 20) titles"],
            n_history=n_history,
            n_candidates=n_candidates,
            **_history_stats(data, users, n_history),
        ),
    )


# ---------------------------------------------------------------------------------------------
# routing


def routing_example(
    task: str, record: Any, llms: dict[str, Any], objective: str, weight: float, seed: int
) -> RankingExample:
    """One routing example (see module docstring for utility, tie rule and graded relevance)."""

    util, cost = routing_utilities(record, llms, weight)
    order = routing_order(util, cost)
    relevance = grades_from_order(order)
    names = list(record.scores)
    rng = rng_for(seed, task, record.query_id)
    rng.shuffle(names)
    cands = []
    for name in names:
        info = llms.get(name)
        cands.append(
            Candidate(
                id=name,
                text=info.description if info else name,
                meta={
                    "name": name,
                    "input_price": info.input_price if info else None,
                    "output_price": info.output_price if info else None,
                },
            )
        )
    return RankingExample(
        id=f"{task}:{record.query_id}",
        scenario="routing",
        query=record.query,
        candidates=cands,
        relevance=relevance,
        meta={
            "objective": objective,
            "query_id": record.query_id,
            "best": order[0],
            "scores": dict(record.scores),
            "utility": {k: round(v, 6) for k, v in util.items()},
            "cost": dict(cost),
            "informative": len(set(record.scores.values())) > 1,
            **({"task_id": record.meta["task_id"]} if "task_id" in record.meta else {}),
        },
    )


def _build_router(
    spec: TaskSpec,
    data_dir: Path,
    split: str,
    seed: int,
    limit: int | None,
    *,
    test_fraction: float = TEST_FRACTION,
) -> TaskData:

    objective = spec.options["objective"]

    weight = OBJECTIVE_WEIGHTS[objective]
    notes: list[str] = []
    dropped = 0
    try:
        folder = _locate(
            data_dir,
            ["router/llmrouter_dcrouter", "llmrouter_dcrouter", "router"],
            ["test.json", "train.json", "default_llm.json"],
            spec.name,
        )
        llms = load_llm_info(folder / "default_llm.json")
        test = load_dcrouter(folder / "test.json")
        if split == "test":
            records = test
            rule = "LLMRouter's own test.json"
        else:
            test_ids = {r.query_id for r in test}
            train = load_dcrouter(folder / "train.json")
            records = [r for r in train if r.query_id not in test_ids]
            dropped = len(train) - len(records)
            rule = "LLMRouter's own train.json minus questions that also occur in test.json"
        source = f"dcrouter:{folder}"
        cost_note = "cost = mean(input_price, output_price) per 1M tokens (equal for every dcrouter LLM); no token counts"
    except SourceNotFound:
        folder = _locate(
            data_dir,
            ["router/graphrouter", "graphrouter", "router"],
            ["router_data.csv"],
            f"{spec.name} (dcrouter JSON or GraphRouter router_data.csv)",
        )
        desc = sorted(folder.glob("*Descriptions*.json")) or sorted(
            folder.parent.glob("configs/*Descriptions*.json")
        )
        llms = load_llm_info(desc[0]) if desc else {}
        all_records = load_graphrouter_csv(folder / "router_data.csv")
        records = [
            r
            for r in all_records
            if split_of(r.query_id, seed=SPLIT_SEED, test_fraction=test_fraction) == split
        ]
        rule = f"queries assigned by sha256(split_seed, query_id) < {test_fraction} -> test, else train"
        source = f"graphrouter:{folder}/router_data.csv"
        cost_note = "cost = GraphRouter's measured per-query cost, min-max normalised across the query's LLMs"
    unseen = [n for n in spec.options.get("held_out_llms", ()) if any(n in r.scores for r in records)]
    if unseen and split == "train":
        # the held-out-LLM protocol: training pools never contain the held-out LLMs
        records = [RoutingRecordView.without(r, unseen) for r in records]
        notes.append(f"held-out-LLM split: training pools exclude {unseen}")
    elif unseen:
        notes.append(
            f"held-out-LLM split: test pools contain {unseen}, which training (split train) never shows"
        )
    names = sorted({n for r in records for n in r.scores})
    missing = [n for n in names if n not in llms]
    if missing:
        notes.append(f"no description for {missing}: their name is shown instead")
    chosen = sample_keys(records, limit, seed=seed, salt=spec.name)
    examples = [routing_example(spec.name, r, llms, objective, weight, seed) for r in chosen]
    best = Counter(e.meta["best"] for e in examples)
    return TaskData(
        spec.name,
        split,
        examples,
        _meta(
            spec,
            split,
            seed,
            limit,
            n_examples=len(examples),
            n_in_split=len(records),
            n_informative=sum(e.meta["informative"] for e in examples),
            objective=objective,
            weight=weight,
            llms=names,
            prices={n: price_of(llms[n]) for n in names if n in llms and llms[n].input_price is not None},
            most_frequent_best=best.most_common(1)[0] if best else None,
            **({"held_out_llms": unseen, "best_is_held_out": sum(best[n] for n in unseen)} if unseen else {}),
            source=source,
            split_rule=rule,
            dropped_train_overlap_with_test=dropped,
            relevance_rule="grade = n - position in (utility desc, cost asc, name) order; best = n",
            cost_rule=cost_note,
            notes=notes,
        ),
    )


class RoutingRecordView:
    """Copies of routing records restricted to some LLMs (the held-out-LLM training pools)."""

    @staticmethod
    def without(record: Any, names: Iterable[str]) -> Any:

        drop = set(names)
        costs = None if record.costs is None else {k: v for k, v in record.costs.items() if k not in drop}
        return replace(record, scores={k: v for k, v in record.scores.items() if k not in drop}, costs=costs)


#: the LLMs the ``router-heldout-*`` tasks never show in training: the cheapest of the nine
#: (the name the first trained model learned instead of prices), a 0.2 and a 0.9 one
HELD_OUT_LLMS = ("gemma-2-9b-it", "mistral-7b-instruct-v0.3", "llama3-chatqa-1.5-70b")


# ---------------------------------------------------------------------------------------------
# passages


def _locate_dl19(data_dir: Path, name: str) -> Path:
    return _locate(
        data_dir,
        ["passage/trec_dl", "trec_dl", "passage"],
        ["retrieve_results_dl19.json", "qrels_dl19.json"],
        name,
    )


def passage_pool_examples(
    task: str, queries: list[Any], qrels: dict[str, dict[str, int]], k: int, seed: int, *, min_grade: int = 2
) -> tuple[list[RankingExample], Counter]:
    """Per query: one passage with grade >= ``min_grade`` + k-1 judged non-relevant (grade 0).

    Only *judged* zeros are negatives: an unjudged BM25 hit may well be relevant. The pool is
    drawn (seeded) from the run's hits and shuffled.
    """
    out, skipped = [], Counter()
    for q in queries:
        judged = qrels.get(q.qid, {})
        rel = [h for h in q.hits if judged.get(h.docid, -1) >= min_grade]
        non = [h for h in q.hits if judged.get(h.docid, -1) == 0]
        if not rel:
            skipped[f"no passage with grade >= {min_grade} in the run"] += 1
            continue
        if len(non) < k - 1:
            skipped[f"fewer than {k - 1} judged non-relevant passages in the run"] += 1
            continue
        rng = rng_for(seed, task, q.qid)
        pos = rng.choice(rel)
        pool = [pos, *rng.sample(non, k - 1)]
        rng.shuffle(pool)
        out.append(
            RankingExample(
                id=f"{task}:{q.qid}",
                scenario="passage",
                query=q.query,
                candidates=[
                    Candidate(h.docid, h.text, {"bm25_rank": h.rank, "bm25_score": h.score}) for h in pool
                ],
                relevance={pos.docid: float(judged[pos.docid])},
                meta={"qid": q.qid, "k": k},
            )
        )
    return out, skipped


def msmarco_pool_examples(
    task: str, rows: list[Any], k: int, seed: int
) -> tuple[list[RankingExample], Counter]:
    """MS MARCO v1.1 rows with exactly one selected passage -> it + k-1 unselected ones.

    The paper kept rows with exactly k passages; we sample k-1 of the unselected passages
    instead, which keeps more queries and gives the same pool shape.
    """
    out, skipped = [], Counter()
    for row in rows:
        sel = [i for i, s in enumerate(row.is_selected) if s == 1]
        if len(sel) != 1:
            skipped["not exactly one selected passage"] += 1
            continue
        non = [i for i, s in enumerate(row.is_selected) if s != 1 and row.passages[i].strip()]
        if len(non) < k - 1:
            skipped[f"fewer than {k - 1} unselected passages"] += 1
            continue
        rng = rng_for(seed, task, row.query_id)
        pool = [sel[0], *rng.sample(non, k - 1)]
        rng.shuffle(pool)
        ids = {i: f"{row.query_id}-{i}" for i in pool}
        out.append(
            RankingExample(
                id=f"{task}:{row.query_id}",
                scenario="passage",
                query=row.query,
                candidates=[Candidate(ids[i], row.passages[i]) for i in pool],
                relevance={ids[sel[0]]: 1.0},
                meta={"qid": row.query_id, "k": k},
            )
        )
    return out, skipped


def _build_passage_pool(
    spec: TaskSpec, data_dir: Path, split: str, seed: int, limit: int | None, *, source: str | None = None
) -> TaskData:
    k = spec.options["k"]
    source = source or ("trec-dl19" if split == "test" else "msmarco")
    if source == "trec-dl19":
        if split != "test":
            raise ValueError(
                f"{spec.name}: TREC DL19 has 43 queries and is used for test only; "
                "build the train split from MS MARCO v1.1 (source='msmarco')"
            )
        from .passage import load_qrels, load_trec_run_json

        folder = _locate_dl19(data_dir, spec.name)
        queries = load_trec_run_json(folder / "retrieve_results_dl19.json")
        qrels = load_qrels(folder / "qrels_dl19.json")
        # pools are filtered first, so ``limit`` samples from the usable queries
        examples, skipped = passage_pool_examples(spec.name, queries, qrels, k, seed)
        examples = sample_keys(examples, limit, seed=seed, salt=spec.name)
        n_queries = len(queries)
        src = f"trec-dl19:{folder}"
        rule = "TREC DL19 (43 judged queries) is an evaluation set: test only, no query split"
        stand_in = spec.stand_in
    elif source == "msmarco":
        from .passage import load_msmarco_parquet

        folder = _locate(
            data_dir,
            ["passage/msmarco_v1.1", "msmarco_v1.1", "msmarco", "passage"],
            [f"{'validation' if split == 'test' else 'train'}*.parquet"],
            f"{spec.name} (MS MARCO v1.1 parquet)",
        )
        files = sorted(folder.glob(f"{'validation' if split == 'test' else 'train'}*.parquet"))
        rows = load_msmarco_parquet(files)
        # pools are filtered first, so ``limit`` samples from the usable queries
        examples, skipped = msmarco_pool_examples(spec.name, rows, k, seed)
        examples = sample_keys(examples, limit, seed=seed, salt=spec.name)
        n_queries = len(rows)
        src = f"msmarco-v1.1:{folder}"
        rule = f"MS MARCO v1.1's own {'validation' if split == 'test' else 'train'} split"
        stand_in = None
    else:
        raise ValueError(f"{spec.name}: unknown source {source!r}; use 'trec-dl19' or 'msmarco'")
    return TaskData(
        spec.name,
        split,
        examples,
        _meta(
            spec,
            split,
            seed,
            limit,
            n_examples=len(examples),
            n_queries=n_queries,
            k=k,
            source=src,
            split_rule=rule,
            skipped=dict(skipped),
            stand_in=stand_in,
            relevance_rule="relevance = graded qrel of the one relevant passage (negatives are judged 0)",
        ),
    )


def _build_trec_dl19(
    spec: TaskSpec, data_dir: Path, split: str, seed: int, limit: int | None, *, depth: int = 20
) -> TaskData:

    folder = _locate_dl19(data_dir, spec.name)
    queries = load_trec_run_json(folder / "retrieve_results_dl19.json")
    qrels = load_qrels(folder / "qrels_dl19.json")
    chosen = sample_keys(queries, limit, seed=seed, salt=spec.name)
    examples = []
    no_rel = 0
    for q in chosen:
        judged = qrels.get(q.qid, {})
        hits = q.hits[:depth]
        rel = {h.docid: float(judged[h.docid]) for h in hits if judged.get(h.docid, 0) > 0}
        no_rel += not rel
        examples.append(
            RankingExample(
                id=f"{spec.name}:{q.qid}",
                scenario="passage",
                query=q.query,
                candidates=[
                    Candidate(h.docid, h.text, {"bm25_rank": h.rank, "bm25_score": h.score}) for h in hits
                ],
                relevance=rel,
                # TREC DL's convention for binary measures (MRR, Hit): a passage judged >= 2 is relevant
                meta={"qid": q.qid, "qrels": dict(judged), "depth": depth, "relevant_grade": 2},
            )
        )
    n_unjudged = sum(1 for e in examples for c in e.candidates if c.id not in e.meta["qrels"])
    return TaskData(
        spec.name,
        split,
        examples,
        _meta(
            spec,
            split,
            seed,
            limit,
            n_examples=len(examples),
            n_queries=len(queries),
            depth=depth,
            source=f"trec-dl19:{folder}",
            split_rule="TREC DL19 (43 judged queries): test only, no query split",
            queries_without_relevant_in_pool=no_rel,
            unjudged_candidates=n_unjudged,
            relevance_rule=(
                "relevance = graded qrels (0-3) of the shown passages, unjudged = 0; "
                "meta['qrels'] holds all judgements for trec_eval-style nDCG@10"
            ),
            candidate_order="BM25 rank order (the baseline a re-ranker must beat)",
        ),
    )


# ---------------------------------------------------------------------------------------------
# registry

_DL19_STAND_IN = (
    "TREC DL19 passages (BM25 top-100, graded qrels) stand in for MS MARCO v1.1 QA, "
    "which is not available here; pools use judged passages only"
)

TASKS: dict[str, TaskSpec] = {
    "rec-movie": TaskSpec(
        "rec-movie",
        "recommendation",
        "MovieLens-1M: next movie among 20",
        ("train", "test"),
        "MRR, NDCG@k, Hit@k",
        _build_rec_movie,
        {"domain": "movie"},
    ),
    "rec-music": TaskSpec(
        "rec-music",
        "recommendation",
        "Amazon CDs & Vinyl: next album among 20",
        ("train", "test"),
        "MRR, NDCG@k, Hit@k",
        _build_rec_music,
        {"domain": "music album"},
        stand_in="R3's CDs & Vinyl 2015-10..2018-11 CSVs (history <= 10) stand in for the full "
        "Amazon CDs & Vinyl 5-core file",
    ),
    "rec-game": TaskSpec(
        "rec-game",
        "recommendation",
        "Amazon Video Games: next game among 20",
        ("train", "test"),
        "MRR, NDCG@k, Hit@k",
        _build_rec_game,
        {"domain": "video game"},
    ),
    **{
        f"router-{obj}": TaskSpec(
            f"router-{obj}",
            "routing",
            f"LLM routing, objective {obj}",
            ("train", "test"),
            "MRR, NDCG@k, Hit@k",
            _build_router,
            {"objective": obj},
            stand_in="LLMRouter dcrouter (9 LLMs, list prices) stands in for GraphRouter's "
            "router_data.csv (10 LLMs, measured cost), which is not available here",
        )
        for obj in ROUTING_OBJECTIVES
    },
    **{
        f"router-heldout-{obj}": TaskSpec(
            f"router-heldout-{obj}",
            "routing",
            f"LLM routing, objective {obj}, held-out LLMs: train pools have 6 of the 9 LLMs, test pools all 9",
            ("train", "test"),
            "MRR, NDCG@k, Hit@k",
            _build_router,
            {"objective": obj, "held_out_llms": HELD_OUT_LLMS},
            stand_in="LLMRouter dcrouter (9 LLMs, list prices); "
            + ", ".join(HELD_OUT_LLMS)
            + " never in training",
        )
        for obj in ROUTING_OBJECTIVES
    },
    **{
        f"passage-{k}": TaskSpec(
            f"passage-{k}",
            "passage",
            f"one relevant passage among {k}",
            ("train", "test"),
            "MRR, NDCG@k, Hit@k",
            _build_passage_pool,
            {"k": k},
            stand_in=_DL19_STAND_IN,
        )
        for k in (5, 7, 9)
    },
    "trec-dl19": TaskSpec(
        "trec-dl19", "passage", "re-rank BM25 top-20 of TREC DL19", ("test",), "nDCG@10", _build_trec_dl19
    ),
}


#: the ten tasks of the benchmark table (``iranker eval --tasks all``); the held-out-LLM
#: variants of the routing tasks are a protocol beside it, run by name
BENCHMARK_TASKS: tuple[str, ...] = tuple(t for t in TASKS if not t.startswith("router-heldout-"))


def list_tasks() -> list[str]:
    """Task names in registry order."""
    return list(TASKS)


def build_task(
    name: str,
    data_dir: str | os.PathLike[str],
    split: str = "test",
    seed: int = 0,
    limit: int | None = None,
    **options: Any,
) -> TaskData:
    """Build the examples of task ``name`` from the source files under ``data_dir``.

    ``seed`` drives negative sampling, candidate shuffling and the ``limit`` subsample; the
    train/test assignment uses the fixed ``SPLIT_SEED`` so that it never changes with
    ``seed``. ``limit`` keeps a seeded random subset (not a prefix). Task-specific
    ``options``: rec — ``min_history``, ``n_history``, ``n_candidates``, ``test_fraction``;
    passage-k — ``source`` ('trec-dl19' | 'msmarco'); trec-dl19 — ``depth``.
    """
    try:
        spec = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; use one of {', '.join(TASKS)}") from None
    _check_split(spec, split)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SourceNotFound(f"{name}: data_dir {data_dir} is not a folder")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return spec.builder(spec, data_dir, split, seed, limit, **options)
