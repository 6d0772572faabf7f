"""A model records the signals it was trained with and refuses to rank without them (and the
reverse), with one clear line, before any prompt reaches the backend."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import passage_example, rec_example

from iranker.cli import main as cli
from iranker.llm import ScriptedLLM
from iranker.rankers import IterativeRanker
from iranker.signals import make_providers
from iranker.signals.recorded import (
    SignalsMismatch,
    check_signals_match,
    recorded_signals,
    recorded_signals_for_model,
    signals_from_info,
    signals_of_steps,
)
from iranker.signals.schema import with_signals
from iranker.signals.wrap import SignalsRanker


def signed(ex, *names):
    return with_signals(ex, {n: {c.id: float(i) for i, c in enumerate(ex.candidates)} for n in names})


REC = {"recommendation": ["bm25", "cooccur"], "routing": ["bm25", "outcomes"]}


@pytest.mark.parametrize(
    "recorded,example,error",
    [
        (None, signed(passage_example(), "bm25"), None),  # not a trained folder: never checked
        ({}, passage_example(), None),  # trained without, shown none
        ({}, signed(passage_example(), "bm25"), "trained without signals, but example 'p1' carries bm25"),
        (REC, rec_example(), "trained with signals .*carries none; rank with --signals bm25,cooccur"),
        (REC, signed(rec_example(), "bm25", "cooccur"), None),
        (
            REC,
            signed(rec_example(), "bm25"),
            "trained with recommendation signals bm25,cooccur, but .* carries bm25;",
        ),
        (REC, signed(passage_example(), "bm25"), None),  # zero-shot scenario: a subset is fine
        (REC, signed(passage_example(), "dense"), "not on passage.*carries dense too"),
    ],
)
def test_check_signals_match(recorded, example, error):
    if error is None:
        check_signals_match(recorded, example, "m")
    else:
        with pytest.raises(SignalsMismatch, match=error):
            check_signals_match(recorded, example, "m")


def test_what_a_folder_and_a_step_dataset_record():
    assert signals_from_info(None) is None
    assert (
        signals_from_info({"format": "iranker-run/1"}) == {}
    )  # a folder from before signals: trained without
    assert signals_from_info({"signals": {"routing": ["outcomes", "bm25"], "passage": []}}) == {
        "routing": ["bm25", "outcomes"]
    }
    assert signals_of_steps({"signals": {"names": ["bm25"], "record": {"passage": ["bm25"]}}}) == {
        "passage": ["bm25"]
    }
    assert signals_of_steps({}) == {} and signals_of_steps(None) == {}
    assert recorded_signals_for_model("iranker-135m") == {}  # the shipped model was trained without
    assert recorded_signals_for_model("smollm2-135m") is None  # the base is not an iranker folder
    assert recorded_signals_for_model("last", "scripted") is None


def test_signals_ranker_refuses_before_the_backend_is_called():
    llm = ScriptedLLM.eliminate_last()
    ranker = SignalsRanker(
        IterativeRanker(llm, show_progress=False), make_providers(["bm25"]), recorded={}, model="m"
    )
    with pytest.raises(SignalsMismatch, match="m was trained without signals"):
        ranker.rank([passage_example()])
    assert llm.calls == []
    ok = SignalsRanker(
        IterativeRanker(llm, show_progress=False), make_providers(["bm25"]), recorded={"passage": ["bm25"]}
    )
    r = ok.rank([passage_example()])[0]
    assert sorted(r.order) == ["d1", "d2", "d3"]
    assert "(signals: bm25 1/3)" in llm.calls[0][0][1]["content"]


def test_recorded_signals_of_a_backend(tmp_path):
    class WithAttr(ScriptedLLM):
        signals = {"passage": ["dense"]}

    assert recorded_signals(WithAttr(lambda m: "")) == {"passage": ["dense"]}
    assert recorded_signals(ScriptedLLM.eliminate_last()) is None


@pytest.fixture()
def signal_model(tmp_path):
    """A copy of the shipped adapter whose iranker.json says it was trained with bm25 on passages."""
    from iranker.llm.models import resolve_model

    src = resolve_model("iranker-135m").path
    dst = tmp_path / "with-signals"
    shutil.copytree(src, dst)
    info = json.loads((dst / "iranker.json").read_text())
    info["signals"] = {"passage": ["bm25"]}
    (dst / "iranker.json").write_text(json.dumps(info))
    return dst


def write_input(path, signals=False):
    cands = [{"id": "d1", "text": "Paris is in France."}, {"id": "d2", "text": "A flea can live a year."}]
    if signals:
        for i, c in enumerate(cands):
            c["signals"] = {"bm25": float(i)}
    path.write_text(
        json.dumps({"id": "q", "scenario": "passage", "query": "fleas", "candidates": cands}) + "\n"
    )
    return path


@pytest.mark.parametrize(
    "model,args,given,error",
    [
        ("iranker-135m", ["--signals", "bm25"], False, "iranker-135m was trained without signals"),
        ("iranker-135m", [], True, "iranker-135m was trained without signals, but example 'q' carries bm25"),
        ("SIGNAL_MODEL", [], False, "was trained with signals \\(bm25\\), but example 'q' carries none"),
        (
            "SIGNAL_MODEL",
            ["--signals", "dense"],
            False,
            "trained with passage signals bm25, but .* carries dense",
        ),
    ],
)
def test_rank_refuses_a_mismatch_in_one_line_before_loading(
    tmp_path, capsys, signal_model, model, args, given, error
):
    src = write_input(tmp_path / "in.jsonl", given)
    out = tmp_path / "out.jsonl"
    model = str(signal_model) if model == "SIGNAL_MODEL" else model
    rc = cli.main(["rank", "-i", str(src), "-o", str(out), "--model", model, "-q", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    import re

    assert re.search(error, err), err
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()
