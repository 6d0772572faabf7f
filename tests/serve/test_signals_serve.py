"""Signals over HTTP: documents / models carry ``signals``, the server may compute them
(``create_app(signals=...)`` = ``iranker serve --signals``), bad values and mismatches are 422."""

from __future__ import annotations

import pytest
from serve_helpers import TEST_LIMITS, live

from iranker.llm import ScriptedLLM
from iranker.serve.app import create_app
from iranker.serve.settings import ServeSettings
from iranker.signals import make_providers


def prompts(backend):
    return [p[1]["content"] for batch in backend.calls for p in batch]


def app(backend=None, **kw):
    backend = backend or ScriptedLLM.eliminate_first()
    return backend, create_app(
        backend=backend,
        settings=ServeSettings(**TEST_LIMITS),
        backend_name="scripted",
        model_name="scripted:first",
        **kw,
    )


def test_documents_with_signals_reach_the_prompt_as_ranks():
    backend, a = app()
    with live(a) as srv, srv.client() as c:
        r = c.post(
            "/v2/rerank",
            json={
                "query": "q",
                "return_documents": True,
                "documents": [
                    {"text": "a", "signals": {"retriever": 0.1}},
                    {"text": "b", "signals": {"retriever": 0.7}},
                ],
            },
        )
        assert r.status_code == 200, r.text
        docs = {res["index"]: res["document"] for res in r.json()["results"]}
        assert docs[0]["signals"] == {"retriever": 0.1}  # returned as sent
        assert "[1] a (signals: retriever 2/2)" in prompts(backend)[0]
        r = c.post(
            "/v1/route",
            json={
                "query": "q",
                "models": [{"name": "s", "signals": {"wins": 1}}, {"name": "l", "signals": {"wins": 4}}],
            },
        )
        assert r.status_code == 200, r.text
        assert "[2] l: (signals: wins 1/2)" in prompts(backend)[-1]


@pytest.mark.parametrize(
    "path,body,detail",
    [
        (
            "/v2/rerank",
            {"query": "q", "documents": [{"text": "a", "signals": {"x": "high"}}, "b"]},
            "documents[0].signals.x: must be a number",
        ),
        (
            "/v2/rerank",
            {"query": "q", "documents": [{"text": "a", "signals": {"x": 1}}, "b"]},
            "documents[1].signals: lacks x",
        ),
        (
            "/v2/rerank",
            {
                "query": "q",
                "documents": [{"text": "a", "signals": {"x y": 1}}, {"text": "b", "signals": {"x y": 1}}],
            },
            "documents[0].signals.x y: a signal name",
        ),
        (
            "/v2/rerank",
            {"query": "q", "documents": [{"text": "a", "signals": [1]}, "b"]},
            "documents[0].signals",
        ),
        (
            "/v1/route",
            {
                "query": "q",
                "models": [{"name": "a", "signals": {"x": "1"}}, {"name": "b", "signals": {"x": 1}}],
            },
            "models[0].signals.x",
        ),
        (
            "/v1/route",
            {"query": "q", "models": [{"name": "a", "signals": {"x": 1}}, {"name": "b"}]},
            "models[1].signals: lacks x",
        ),
    ],
)
def test_bad_signals_are_422_naming_the_path(path, body, detail):
    _, a = app()
    with live(a) as srv, srv.client() as c:
        r = c.post(path, json=body)
        assert r.status_code == 422 and detail in r.json()["detail"], r.text


@pytest.mark.parametrize("token", ["NaN", "Infinity"])
def test_non_finite_numbers_are_422(token):
    _, a = app()
    raw = (
        '{"query": "q", "documents": [{"text": "a", "signals": {"x": %s}}, {"text": "b", "signals": {"x": 1}}]}'
        % token
    )
    with live(a) as srv, srv.client() as c:
        r = c.post("/v2/rerank", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "documents[0].signals.x" in r.json()["detail"], r.text


def test_server_flag_computes_signals_and_a_trained_mismatch_is_422():
    class Trained(ScriptedLLM):
        signals = {"passage": ["bm25"]}  # what a trained folder's iranker.json would say

    backend, a = app(Trained(ScriptedLLM.eliminate_first()._responder), signals=make_providers(["bm25"]))
    with live(a) as srv, srv.client() as c:
        r = c.post("/v2/rerank", json={"query": "fleas", "documents": ["Paris", "fleas live a year"]})
        assert r.status_code == 200, r.text
        assert "[2] fleas live a year (signals: bm25 1/2)" in prompts(backend)[0]
        r = c.post(
            "/v2/rerank",
            json={
                "query": "fleas",
                "documents": [{"text": "a", "signals": {"bm25": 1}}, {"text": "b", "signals": {"bm25": 2}}],
            },
        )
        assert r.status_code == 422 and "already carry signal(s) bm25" in r.json()["detail"]
    backend, a = app(Trained(ScriptedLLM.eliminate_first()._responder))
    with live(a) as srv, srv.client() as c:
        r = c.post("/v2/rerank", json={"query": "fleas", "documents": ["Paris", "fleas"]})
        assert r.status_code == 422 and "trained with signals (bm25)" in r.json()["detail"]
        assert backend.calls == []


def test_serve_command_refuses_bad_signal_flags(capsys):
    from iranker.serve.command import main

    assert main(["--backend", "scripted", "--signals", "cooccur"]) == 2
    assert "needs an interactions file" in capsys.readouterr().err
