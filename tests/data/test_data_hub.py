"""Ranking-bench (HF ``ulab-ai/Ranking-bench``) rows -> RankingExample, from local fixtures only."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub from tests

import pytest

from iranker.data.hub import load_ranking_bench, row_to_example, rows_to_examples
from iranker.data.io import example_from_record

REC_PROBLEM = (
    "I've watched the following movies in the past, in order:\n"
    "['0. Heat (1995)', '1. Alien (1979)', \"2. Schindler's List (1993)\"]\n\n"
    "Now there are 3 candidate movies that I might watch next:\n"
    "['0. Toy Story (1995)', '1. Aliens (1986)', '2. Casino (1995)']\n\n"
    "Please select the one movie that is least likely to be my next watch, according to my "
    "watching history. Please think step by step."
)
ROUTER_PROBLEM = (
    "# The LLM names and their discriptions are: \n"
    "    # LLaMA-3 (8b): Each token price is 0.2. Handles simple Hybrid QA. \n"
    "    # Mixtral-8x7B: Each token price is 0.6. Excels at instruction-based tasks. \n"
    "    # Qwen-1.5 (72b): Each token price is 0.9. Versatile for challenging Hybrid QA. \n"
    "    ## Here is a query: What is 2+2? and LLM condidates: ['LLaMA-3 (8b)', 'Mixtral-8x7B', "
    "'Qwen-1.5 (72b)']. Please think step by step ..."
)
PASSAGE_DIRECT = (
    "## Here is a query: what is a flea and candidate passages:\n"
    "passage 0: Dogs bark.\npassage 1: A flea is an insect.\npassage 2: Cats purr.\n\n"
    "Please think step by step according to the content of each passage ..."
)
PASSAGE_SHUFFLED = (
    "## Here is a query: what is a flea and candidate passages:\n"
    "passage 2: Cats purr.\npassage 1: A flea is an insect.\n\n"
    "Please think step by step according to the content of each passage ..."
)

ROWS = [
    {
        "problem": REC_PROBLEM,
        "candidates": ["Toy Story (1995)", "Aliens (1986)", "Casino (1995)"],
        "gt": "Aliens (1986)",
        "task_name": "Rec-Movie",
    },
    {
        "problem": ROUTER_PROBLEM,
        "candidates": ["LLaMA-3 (8b)", "Mixtral-8x7B", "Qwen-1.5 (72b)"],
        "gt": "Mixtral-8x7B",
        "task_name": "Router-Balance",
    },
    {
        "problem": PASSAGE_DIRECT,
        "candidates": ["Dogs bark.", "A flea is an insect.", "Cats purr."],
        "gt": "passage 1",
        "task_name": "Passage-5",
    },
    {
        "problem": PASSAGE_SHUFFLED,
        "candidates": ["Cats purr.", "A flea is an insect."],
        "gt": "passage 1",
        "task_name": "Passage-7",
    },
]


def test_rec_row():
    ex = row_to_example(ROWS[0], index=0)
    assert ex.scenario == "recommendation" and ex.id == "Rec-Movie:test:0"
    assert ex.meta["history"] == ["Heat (1995)", "Alien (1979)", "Schindler's List (1993)"]
    assert ex.meta["domain"] == "movie" and ex.query.startswith("Heat (1995)\n")
    assert ex.best_id() == "1" and ex.candidate("1").text == "Aliens (1986)"
    assert ex.meta["problem"] == REC_PROBLEM


def test_router_row():
    ex = row_to_example(ROWS[1], index=1)
    assert ex.scenario == "routing" and ex.meta["objective"] == "balance"
    assert ex.query == "What is 2+2?"
    c = ex.candidate(ex.best_id())
    assert c.meta == {"name": "Mixtral-8x7B", "input_price": 0.6, "output_price": 0.6}
    assert c.text.startswith("Each token price is 0.6")


def test_passage_rows_use_labels_not_texts():
    direct = row_to_example(ROWS[2], index=2)
    assert direct.query == "what is a flea"
    assert direct.candidate_ids == ["passage 0", "passage 1", "passage 2"]
    assert direct.best_id() == "passage 1" and direct.candidate("passage 1").text == "A flea is an insect."
    shuffled = row_to_example(ROWS[3], index=3)
    assert shuffled.candidate_ids == ["passage 2", "passage 1"]
    assert shuffled.candidate(shuffled.best_id()).text == "A flea is an insect."


def test_bad_rows():
    with pytest.raises(ValueError, match="missing field 'gt'"):
        row_to_example({"problem": "", "candidates": [], "task_name": "Rec-Movie"})
    with pytest.raises(ValueError, match="not among the candidates"):
        row_to_example({**ROWS[0], "gt": "Jaws"})
    with pytest.raises(ValueError, match="unknown task_name"):
        row_to_example({**ROWS[0], "task_name": "QA-1"})


def test_examples_pass_io_validation():
    for ex in rows_to_examples(ROWS):
        assert example_from_record(ex.to_dict()).to_dict() == ex.to_dict()


def test_load_local_jsonl_and_parquet(tmp_path):
    p = tmp_path / "bench.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    exs = load_ranking_bench(p, cache_dir=str(tmp_path / "cache"))
    assert [e.scenario for e in exs] == ["recommendation", "routing", "passage", "passage"]
    only = load_ranking_bench(p, task_name="Router-Balance", cache_dir=str(tmp_path / "cache"))
    assert [e.id for e in only] == ["Router-Balance:test:1"]
    with pytest.raises(ValueError, match="no rows with task_name 'Rec-Game'"):
        load_ranking_bench(p, task_name="Rec-Game", cache_dir=str(tmp_path / "cache"))

    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "Ranking-bench" / "direct"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ROWS), folder / "test-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS[:1]), folder / "train-00000-of-00001.parquet")
    exs = load_ranking_bench(folder / "test-00000-of-00001.parquet", cache_dir=str(tmp_path / "cache"))
    assert len(exs) == 4
    # a local copy in the hub layout: <root>/<config>/<split>-*.parquet
    exs = load_ranking_bench(
        tmp_path / "Ranking-bench", config="direct", split="train", cache_dir=str(tmp_path / "cache")
    )
    assert len(exs) == 1 and exs[0].id == "Rec-Movie:train:0"
    assert len(load_ranking_bench(p, limit=2, cache_dir=str(tmp_path / "cache"))) == 2
