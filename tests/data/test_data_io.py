"""JSONL example I/O: round trip, shorthands, and an error naming path:line for each mistake."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from iranker.data.io import DataError, example_from_record, iter_examples, read_examples, write_examples
from iranker.types import Candidate, RankingExample


def good(**over):
    d = {
        "id": "q1",
        "scenario": "passage",
        "query": "what is a cat",
        "candidates": [{"id": "a", "text": "A cat is a small feline."}, {"id": "b", "text": "Dogs bark."}],
        "relevance": {"a": 2},
    }
    d.update(over)
    return d


def write_lines(tmp_path: Path, *records, name="ex.jsonl") -> Path:
    p = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_round_trip(tmp_path):
    ex = [
        RankingExample(
            id="u1",
            scenario="recommendation",
            query="Heat\nAlien",
            candidates=[Candidate("1", "Toy Story (1995)"), Candidate("2", "Amélie (2001)")],
            relevance={"2": 1.0},
            meta={"history": ["Heat", "Alien"], "domain": "movie"},
        ),
        RankingExample(
            id="r1",
            scenario="routing",
            query="2+2?",
            candidates=[
                Candidate("m1", "small model", {"name": "m1", "input_price": 0.1, "output_price": 0.2}),
                Candidate("m2", "big model", {"name": "m2", "input_price": 1.0, "output_price": 2.0}),
            ],
            relevance={"m1": 2.0, "m2": 1.0},
            meta={"objective": "balance"},
        ),
    ]
    p = tmp_path / "sub" / "out.jsonl"
    assert write_examples(p, ex) == 2
    back = read_examples(p)
    assert [b.to_dict() for b in back] == [e.to_dict() for e in ex]
    assert "Amélie" in p.read_text(encoding="utf-8")  # UTF-8, not \u escapes


def test_gz_and_stream(tmp_path):
    ex = example_from_record(good())
    p = tmp_path / "x.jsonl.gz"
    write_examples(p, [ex])
    assert read_examples(p)[0].to_dict() == ex.to_dict()
    buf = io.StringIO()
    write_examples(buf, [ex])
    buf.seek(0)
    assert read_examples(buf, name="<stdin>")[0].id == "q1"


def test_shorthands_go_to_meta_and_extra_candidate_keys_to_candidate_meta(tmp_path):
    rec = {
        "id": 7,
        "scenario": "routing",
        "query": "q",
        "objective": "cost",
        "candidates": [
            {"id": "m1", "text": "d1", "name": "model-1", "input_price": 0.5},
            {"id": "m2", "text": "d2", "meta": {"name": "model-2"}},
        ],
    }
    r = {
        "id": "h",
        "scenario": "recommendation",
        "history": ["A", "B"],
        "domain": "movie",
        "candidates": [{"id": "x", "text": "X"}, {"id": "y", "text": "Y"}],
    }
    p = write_lines(tmp_path, rec, "", r)  # blank line skipped
    a, b = read_examples(p)
    assert a.id == "7" and a.meta == {"objective": "cost"}
    assert a.candidates[0].meta == {"name": "model-1", "input_price": 0.5}
    assert a.candidates[1].meta == {"name": "model-2"}
    assert b.meta == {"history": ["A", "B"], "domain": "movie"} and b.query == "A\nB"


@pytest.mark.parametrize(
    "record, needle",
    [
        (good(scenario="qa"), "unknown scenario 'qa'"),
        (good(candidates=[{"id": "a", "text": "t"}]), "at least 2 candidates"),
        (good(candidates=[{"id": "a", "text": "t"}, {"id": "a", "text": "u"}]), "duplicate candidate id 'a'"),
        (
            good(candidates=[{"id": "a", "text": "t"}, {"id": "b", "text": "  "}]),
            "candidate 'b': 'text' is empty (only whitespace)",
        ),
        (
            good(candidates=[{"id": "a", "text": "t"}, {"id": "b"}]),
            "candidate 2 is missing field(s) ['text']",
        ),
        ({"id": "x", "scenario": "passage", "query": "q"}, "missing field(s) ['candidates']"),
        ({"scenario": "passage", "query": "q", "candidates": []}, "missing field(s) ['id']"),
        ({k: v for k, v in good().items() if k != "query"}, "missing field(s) ['query']"),
        (good(relevence={"a": 1}), "unknown field(s) ['relevence']"),
        (good(relevance={"A cat is a small feline.": 1}), "not a candidate id"),
        (good(relevance={"a": "high"}), "must be a number"),
        (
            good(scenario="routing", objective="cheap"),
            "objective: must be one of performance, balance, cost, got 'cheap'",
        ),
        (good(scenario="routing", weight=1.5), "weight: must be between 0 and 1, got 1.5"),
        (good(candidates="a,b"), "'candidates' must be a list"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_errors_name_path_and_line(tmp_path, record, needle):
    p = write_lines(tmp_path, good(id="ok"), record)
    with pytest.raises(DataError) as info:
        read_examples(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:2: "), msg
    assert needle in msg
    assert info.value.line == 2 and isinstance(info.value, ValueError)


def test_invalid_json_line(tmp_path):
    p = write_lines(tmp_path, good(id="a"), good(id="b"), '{"id": "c", ')
    with pytest.raises(DataError, match=r":3: invalid JSON"):
        read_examples(p)


def test_duplicate_example_ids(tmp_path):
    p = write_lines(tmp_path, good(), good())
    with pytest.raises(DataError, match=r":2: duplicate example id 'q1' \(first on line 1\)"):
        read_examples(p)


def test_unreadable_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError) as info:
        read_examples(missing)
    assert str(info.value).startswith(f"{missing}:0: cannot read file")
    with pytest.raises(DataError, match=":0: cannot read file"):
        read_examples(tmp_path)  # a directory


def test_not_utf8(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes(json.dumps(good()).encode() + b"\n" + '{"id": "é"}'.encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=":2: not valid UTF-8"):
        read_examples(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n")
    with pytest.raises(DataError, match=":0: no examples"):
        read_examples(p)
    assert read_examples(p, allow_empty=True) == []


def test_iter_is_lazy(tmp_path):
    p = write_lines(tmp_path, good(id="a"), "{broken")
    it = iter_examples(p)
    assert next(it).id == "a"
    with pytest.raises(DataError, match=":2:"):
        next(it)


def test_not_gzip(tmp_path):
    p = tmp_path / "fake.jsonl.gz"
    p.write_text(json.dumps(good()))
    with pytest.raises(DataError, match=":0: cannot read file"):
        read_examples(p)


@pytest.mark.parametrize(
    "line, needle",
    [
        (
            '{"id": "q1", "scenario": "passage", "query": "q", "candidates": [{"id": "a", "text": "x"}, '
            '{"id": "b", "text": "y"}], "relevance": {"a": NaN}}',
            "'relevance.a' is nan",
        ),
        (
            '{"id": "q1", "scenario": "passage", "query": "q", "candidates": [{"id": "a", "text": "x"}, '
            '{"id": "b", "text": "y"}], "relevance": {"a": Infinity}}',
            "'relevance.a' is inf",
        ),
        (
            '{"id": "q1", "scenario": "passage", "query": "q", "candidates": [{"id": "a", "text": 7}, '
            '{"id": "b", "text": "y"}]}',
            "'text' must be a string, got int",
        ),
        (
            '{"id": "q1", "scenario": "routing", "query": "q", "candidates": [{"id": "a", "text": "x", '
            '"input_price": "cheap"}, {"id": "b", "text": "y"}]}',
            "'input_price' must be a number, got str 'cheap'",
        ),
        (
            '{"id": "q1", "scenario": "routing", "query": "q", "candidates": [{"id": "a", "text": "x", '
            '"meta": {"output_price": -1}}, {"id": "b", "text": "y"}]}',
            "'output_price' must be >= 0",
        ),
        (
            '{"id": "q1", "scenario": "passage", "query": "q", "candidates": [{"id": "\\udc80", "text": "x"}, '
            '{"id": "b", "text": "y"}]}',
            "lone surrogate",
        ),
        (
            '{"id": "q1", "scenario": "passage", "query": "q \\ud800", "candidates": [{"id": "a", "text": "x"}, '
            '{"id": "b", "text": "y"}]}',
            "'query' holds a lone surrogate",
        ),
        (
            '{"id": "q1", "scenario": "passage", "query": "q", "meta": '
            + '{"a": ' * 40
            + "1"
            + "}" * 40
            + ", "
            '"candidates": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]}',
            "nests deeper than 32 levels",
        ),
        (
            '{"id": "q1", "scenario": "passage", "query": "q", "meta": ' + "[" * 100000 + "]" * 100000 + ", "
            '"candidates": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]}',
            "nested too deeply",
        ),
    ],
)
def test_values_that_would_break_later_are_refused_with_path_and_line(tmp_path, line, needle):
    path = write_lines(tmp_path, good(), line)
    with pytest.raises(DataError, match=":2: ") as exc:
        read_examples(path)
    assert needle in str(exc.value)


def test_rank_refuses_nan_relevance_with_one_line_and_writes_nothing(tmp_path, capsys):
    from iranker.cli import main as cli

    src = write_lines(
        tmp_path, json.dumps(good()).replace('"relevance": {"a": 2}', '"relevance": {"a": NaN}')
    )
    out = tmp_path / "out.jsonl"
    rc = cli.main(["rank", "-i", str(src), "-o", str(out), "--backend", "scripted", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "is nan" in err[0]
    assert not out.exists() and not Path(str(out) + ".partial").exists()
