"""Every endpoint against a real server on loopback, with raw HTTP and the cohere SDK."""

from __future__ import annotations

import pytest

DOCS = [
    "Paris is the capital of France.",
    "Bananas are yellow.",
    "The Eiffel Tower is in Paris.",
    "Cats sleep a lot.",
]


def user_prompt(call_batch) -> str:
    """The user message of the first prompt of one recorded backend call."""
    return next(m["content"] for m in call_batch[0] if m["role"] == "user")


# ------------------------------------------------------------------------------ rerank --
@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank"])
def test_rerank_order_indices_and_scores(client, path):
    r = client.post(path, json={"model": "rerank-v3.5", "query": "capital of France", "documents": DOCS})
    assert r.status_code == 200, r.text
    body = r.json()
    # the scripted backend eliminates the first shown document each step -> reverse order
    assert [x["index"] for x in body["results"]] == [3, 2, 1, 0]
    scores = [x["relevance_score"] for x in body["results"]]
    assert scores == [1.0, 0.75, 0.5, 0.25]  # (n - rank) / n
    assert all("document" not in x for x in body["results"])
    assert body["id"]
    meta = body["meta"]
    assert meta["api_version"]["version"] == path[2]
    assert meta["tokens"]["input_tokens"] > 0 and meta["tokens"]["output_tokens"] > 0
    assert meta["billed_units"]["search_units"] == 1
    assert meta["backend_calls"] == 3  # n - 1 elimination steps
    assert "trace" not in body


def test_rerank_top_n_and_return_documents(client):
    docs = [DOCS[0], {"text": DOCS[1], "source": "fruit.txt"}, DOCS[2]]
    r = client.post(
        "/v1/rerank", json={"query": "q", "documents": docs, "top_n": 2, "return_documents": True}
    )
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["index"] for x in res] == [2, 1]
    assert [x["relevance_score"] for x in res] == [1.0, pytest.approx(2 / 3, abs=1e-6)]
    assert res[0]["document"] == {"text": DOCS[2]}
    assert res[1]["document"] == {"text": DOCS[1], "source": "fruit.txt"}  # extra fields kept


def test_top_n_above_document_count_returns_all(client):
    r = client.post("/v2/rerank", json={"query": "q", "documents": DOCS[:2], "top_n": 10})
    assert r.status_code == 200
    assert len(r.json()["results"]) == 2


def test_single_document_needs_no_backend_call(server, client):
    before = len(server.backend.calls)
    r = client.post("/v2/rerank", json={"query": "q", "documents": ["only"]})
    assert r.status_code == 200
    assert r.json()["results"] == [{"index": 0, "relevance_score": 1.0}]
    assert len(server.backend.calls) == before


def test_max_tokens_per_doc_truncates_what_the_model_sees(server, client):
    long = "alpha beta gamma delta epsilon zeta eta theta"
    before = len(server.backend.calls)
    r = client.post(
        "/v2/rerank",
        json={
            "query": "q",
            "documents": [long, "short one"],
            "max_tokens_per_doc": 3,
            "return_documents": True,
        },
    )
    assert r.status_code == 200, r.text
    prompt = user_prompt(server.backend.calls[before])
    assert "alpha beta gamma" in prompt and "delta" not in prompt
    returned = {x["index"]: x["document"]["text"] for x in r.json()["results"]}
    assert returned[0] == long  # documents come back as sent


def test_rank_fields_v1(server, client):
    before = len(server.backend.calls)
    docs = [{"title": "Paris", "body": "Capital of France", "id": 7}, {"title": "Bananas", "body": "Yellow"}]
    r = client.post("/v1/rerank", json={"query": "q", "documents": docs, "rank_fields": ["title", "body"]})
    assert r.status_code == 200, r.text
    prompt = user_prompt(server.backend.calls[before])
    assert "title: Paris\nbody: Capital of France" in prompt


def test_unknown_fields_are_ignored_with_a_warning(client):
    r = client.post("/v2/rerank", json={"query": "q", "documents": DOCS[:2], "frobnicate": 1})
    assert r.status_code == 200
    assert r.json()["meta"]["warnings"] == ["ignored unknown fields: frobnicate"]


def test_recommendation_scenario_uses_history(server, client):
    before = len(server.backend.calls)
    r = client.post(
        "/v1/rerank",
        json={
            "scenario": "recommendation",
            "query": "",
            "domain": "movie",
            "history": ["Heat (1995)", "Alien (1979)"],
            "documents": ["Toy Story (1995)", "Aliens (1986)", "Casino (1995)"],
        },
    )
    assert r.status_code == 200, r.text
    assert sorted(x["index"] for x in r.json()["results"]) == [0, 1, 2]
    prompt = user_prompt(server.backend.calls[before])
    assert "- Heat (1995)\n- Alien (1979)" in prompt
    assert "movies" in prompt
    assert "recommender" in server.backend.calls[before][0][0]["content"]


def test_trace_option(client):
    r = client.post("/v1/rerank", json={"query": "q", "documents": DOCS, "return_trace": True})
    assert r.status_code == 200
    body = r.json()
    trace = body["trace"]
    assert trace["ranking"] == [str(x["index"]) for x in body["results"]]
    assert len(trace["steps"]) == len(DOCS) - 1
    pool = ["0", "1", "2", "3"]
    for step in trace["steps"]:
        assert step["pool"] == pool and step["removed"] in pool
        assert step["valid"] is True and step["raw"].startswith("<think>")
        pool = [p for p in pool if p != step["removed"]]
    assert trace["valid_rate"] == 1.0
    assert trace["usage"]["prompt_tokens"] == body["meta"]["tokens"]["input_tokens"]
    assert trace["method"] == "iterative"


# ------------------------------------------------------------------------------- route --
MODELS = [
    {"name": "gpt-big", "description": "strongest reasoning", "input_price": 5, "output_price": 15},
    {"name": "llama-8b", "description": "small and fast", "input_price": 0.2},
    {"name": "mixtral", "description": "good at code"},
]


def test_route_objective(server, client):
    before = len(server.backend.calls)
    r = client.post(
        "/v1/route",
        json={"query": "prove this theorem", "models": MODELS, "objective": "cost", "return_trace": True},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["objective"] == "cost" and body["weight"] == 0.2
    assert [(x["index"], x["name"]) for x in body["results"]] == [
        (2, "mixtral"),
        (1, "llama-8b"),
        (0, "gpt-big"),
    ]
    assert [x["score"] for x in body["results"]] == [
        1.0,
        pytest.approx(2 / 3, abs=1e-6),
        pytest.approx(1 / 3, abs=1e-6),
    ]
    assert body["trace"]["ranking"] == ["mixtral", "llama-8b", "gpt-big"]
    assert len(body["trace"]["steps"]) == 2
    prompt = user_prompt(server.backend.calls[before])
    assert "a low price" in prompt
    assert "gpt-big: strongest reasoning Price: $5 input / $15 output per million tokens." in prompt


def test_route_weight_and_default_objective(server, client):
    before = len(server.backend.calls)
    r = client.post("/v1/route", json={"query": "hi", "models": MODELS, "weight": 0.7, "top_n": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["weight"] == 0.7 and "objective" not in body  # None is omitted
    assert len(body["results"]) == 1 and "trace" not in body
    assert "weight 0.7 on answer quality" in user_prompt(server.backend.calls[before])
    r = client.post("/v1/route", json={"query": "hi", "models": MODELS})
    assert r.json()["objective"] == "performance" and r.json()["weight"] == 1.0


# -------------------------------------------------------------------------- ops + docs --
def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["loaded"] is True
    assert h["backend"] == "scripted" and h["model"] == "scripted:first" and h["method"] == "iterative"
    assert h["limits"]["max_documents"] == 20 and h["limits"]["auth"] is False
    assert "api_key" not in h["limits"]


def test_metrics_count_requests_errors_latency_tokens(client):
    m0 = client.get("/metrics").json()
    client.post("/v2/rerank", json={"query": "q", "documents": DOCS})
    client.post("/v2/rerank", json={"query": "q", "documents": []})  # 422
    m1 = client.get("/metrics").json()
    assert m1["requests_total"] >= m0["requests_total"] + 3  # + the first /metrics
    assert m1["errors_4xx"] == m0["errors_4xx"] + 1
    assert m1["errors_5xx"] == 0
    assert m1["rankings"] == m0["rankings"] + 1
    assert m1["tokens"]["prompt"] > m0["tokens"]["prompt"]
    assert m1["mean_latency_ms"] > 0
    assert m1["endpoints"]["/v2/rerank"]["p99_latency_ms"] >= m1["endpoints"]["/v2/rerank"]["p50_latency_ms"]
    assert m1["batcher"]["batches"] >= 1
    prom = client.get("/metrics", params={"format": "prometheus"})
    assert prom.status_code == 200 and "iranker_rankings_total" in prom.text
    assert client.get("/metrics", params={"format": "xml"}).status_code == 422


def test_openapi_documents_the_score(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/rerank", "/v2/rerank", "/v1/route", "/healthz", "/metrics"} <= set(spec["paths"])
    text = str(spec)
    assert "(n - rank) / n" in text and "whitespace-separated words" in text


# --------------------------------------------------------------------------- cohere SDK --
def test_cohere_sdk_v2(server):
    cohere = pytest.importorskip("cohere")
    co = cohere.ClientV2(api_key="unused", base_url=server.url)
    resp = co.rerank(model="rerank-v3.5", query="capital of France", documents=DOCS, top_n=3)
    assert [r.index for r in resp.results] == [3, 2, 1]
    assert [r.relevance_score for r in resp.results] == [1.0, 0.75, 0.5]
    assert resp.meta.billed_units.search_units == 1
    assert resp.meta.tokens.input_tokens > 0


def test_cohere_sdk_v1(server):
    cohere = pytest.importorskip("cohere")
    co = cohere.Client(api_key="unused", base_url=server.url)
    resp = co.rerank(query="capital of France", documents=DOCS, return_documents=True, top_n=2)
    assert [r.index for r in resp.results] == [3, 2]
    assert resp.results[0].document.text == DOCS[3]


def test_cohere_sdk_validation_error_is_a_4xx(server):
    cohere = pytest.importorskip("cohere")
    from cohere.core.api_error import ApiError

    co = cohere.ClientV2(api_key="unused", base_url=server.url)
    with pytest.raises(ApiError) as err:
        co.rerank(model="m", query="q", documents=[], request_options={"max_retries": 0})
    assert err.value.status_code == 422
    assert "documents" in str(err.value.body)
