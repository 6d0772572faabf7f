"""Every malformed body gets a 4xx whose detail names the field; limits answer 413.

The server fixture uses small limits: 20 documents, 500 characters per document, 1000 per
query, 10 history items, 20 000 body bytes.
"""

from __future__ import annotations

import json

import pytest

OK = {"query": "q", "documents": ["a", "b"]}


def body(**over):
    d = dict(OK)
    for k, v in over.items():
        if v is DROP:
            d.pop(k, None)
        else:
            d[k] = v
    return d


DROP = object()

RERANK_CASES = [
    ("missing query", body(query=DROP), 422, "query"),
    ("empty query", body(query=""), 422, "query"),
    ("blank query", body(query="   "), 422, "query"),
    ("non-string query", body(query=123), 422, "query"),
    ("null query", body(query=None), 422, "query"),
    ("missing documents", body(documents=DROP), 422, "documents"),
    ("no documents", body(documents=[]), 422, "documents: must not be empty"),
    ("documents not a list", body(documents="a b"), 422, "documents"),
    ("non-string document", body(documents=["a", 5]), 422, "documents[1]"),
    ("null document", body(documents=[None]), 422, "documents[0]"),
    ("list document", body(documents=[["a"]]), 422, "documents[0]"),
    ("object without text", body(documents=["a", {"title": "x"}]), 422, "documents[1]"),
    ("object with non-string text", body(documents=[{"text": 5}]), 422, "documents[0].text"),
    ("top_n zero", body(top_n=0), 422, "top_n"),
    ("top_n negative", body(top_n=-1), 422, "top_n"),
    ("top_n string", body(top_n="2"), 422, "top_n"),
    ("top_n float", body(top_n=1.5), 422, "top_n"),
    ("top_n bool", body(top_n=True), 422, "top_n"),
    ("top_n over the limit", body(top_n=21), 422, "top_n"),
    ("return_documents not bool", body(return_documents="yes"), 422, "return_documents"),
    ("max_tokens_per_doc zero", body(max_tokens_per_doc=0), 422, "max_tokens_per_doc"),
    ("return_trace not bool", body(return_trace=1), 422, "return_trace"),
    ("scenario routing", body(scenario="routing"), 422, "scenario"),
    ("unknown scenario", body(scenario="music"), 422, "scenario"),
    ("history without recommendation", body(history=["x"]), 422, "history"),
    ("domain without recommendation", body(domain="movie"), 422, "domain"),
    ("non-string history item", body(scenario="recommendation", history=["x", 3]), 422, "history[1]"),
    ("history not a list", body(scenario="recommendation", history="x"), 422, "history"),
    ("recommendation without query or history", body(scenario="recommendation", query=DROP), 422, "query"),
    ("rank_fields naming nothing", body(documents=[{"a": 1}], rank_fields=["b"]), 422, "rank_fields"),
    (
        "rank_fields naming an object",
        body(documents=[{"a": {"b": 1}}], rank_fields=["a"]),
        422,
        "documents[0].a",
    ),
    ("rank_fields not strings", body(rank_fields=[1]), 422, "rank_fields[0]"),
    ("model not a string", body(model=5), 422, "model"),
    # limits -> 413
    ("too many documents", body(documents=["d"] * 21), 413, "documents: 21 is over the server limit of 20"),
    ("document too long", body(documents=["a", "x" * 501]), 413, "documents[1] characters"),
    ("query too long", body(query="q" * 1001), 413, "query characters"),
    ("too much history", body(scenario="recommendation", history=["h"] * 11), 413, "history items"),
    (
        "history item too long",
        body(scenario="recommendation", history=["h" * 501]),
        413,
        "history[0] characters",
    ),
]


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank"])
@pytest.mark.parametrize("name,payload,status,needle", RERANK_CASES, ids=[c[0] for c in RERANK_CASES])
def test_rerank_rejects(client, path, name, payload, status, needle):
    r = client.post(path, json=payload)
    assert r.status_code == status, r.text
    err = r.json()
    assert needle in err["detail"], err
    assert err["message"] == err["detail"]


def test_valid_edge_cases_are_accepted(client):
    # recommendation may omit the query when it has a history
    r = client.post(
        "/v1/rerank", json={"scenario": "recommendation", "history": ["Heat"], "documents": ["a", "b"]}
    )
    assert r.status_code == 200, r.text
    # truncation happens before the length limit: a long document cut to 3 words is accepted
    r = client.post(
        "/v1/rerank", json={"query": "q", "documents": ["w " * 400, "b"], "max_tokens_per_doc": 3}
    )
    assert r.status_code == 200, r.text


MODELS = [{"name": "a", "description": "A"}, {"name": "b"}]
ROUTE_OK = {"query": "q", "models": MODELS}


def route(**over):
    d = dict(ROUTE_OK)
    for k, v in over.items():
        if v is DROP:
            d.pop(k, None)
        else:
            d[k] = v
    return d


ROUTE_CASES = [
    ("missing query", route(query=DROP), 422, "query"),
    ("empty query", route(query=" "), 422, "query"),
    ("missing models", route(models=DROP), 422, "models"),
    ("no models", route(models=[]), 422, "models: must not be empty"),
    ("model not an object", route(models=["a"]), 422, "models[0]"),
    ("model without name", route(models=[{"description": "x"}]), 422, "models[0].name"),
    ("empty name", route(models=[{"name": ""}]), 422, "models[0].name"),
    ("blank name", route(models=[{"name": "  "}]), 422, "models[0].name"),
    ("non-string name", route(models=[{"name": 3}]), 422, "models[0].name"),
    (
        "duplicate names",
        route(models=[{"name": "a"}, {"name": "b"}, {"name": "a"}]),
        422,
        "duplicate model name 'a'",
    ),
    (
        "duplicate names by case",
        route(models=[{"name": "GPT"}, {"name": "gpt "}]),
        422,
        "duplicate model name",
    ),
    ("unknown objective", route(objective="fast"), 422, "objective"),
    ("objective and weight", route(objective="cost", weight=0.3), 422, "give one of them, not both"),
    ("weight above 1", route(weight=1.5), 422, "weight"),
    ("weight below 0", route(weight=-0.1), 422, "weight"),
    ("weight string", route(weight="0.5"), 422, "weight"),
    ("negative price", route(models=[{"name": "a", "input_price": -1}]), 422, "models[0].input_price"),
    ("price string", route(models=[{"name": "a", "output_price": "$3"}]), 422, "models[0].output_price"),
    ("unknown model field", route(models=[{"name": "a", "price": 3}]), 422, "models[0].price"),
    ("unknown field", route(objectve="cost"), 422, "objectve"),
    ("top_n zero", route(top_n=0), 422, "top_n"),
    ("too many models", route(models=[{"name": f"m{i}"} for i in range(21)]), 413, "models: 21"),
    (
        "description too long",
        route(models=[{"name": "a", "description": "d" * 501}]),
        413,
        "models[0].description",
    ),
]


@pytest.mark.parametrize("name,payload,status,needle", ROUTE_CASES, ids=[c[0] for c in ROUTE_CASES])
def test_route_rejects(client, name, payload, status, needle):
    r = client.post("/v1/route", json=payload)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"], r.json()


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/v1/route"])
@pytest.mark.parametrize(
    "content,needle",
    [
        (b"{bad json", "invalid JSON"),
        (b"", "JSON object"),
        (b"[]", "body"),
        (b'"text"', "body"),
        (b"null", "body"),
    ],
    ids=["invalid-json", "empty", "array", "string", "null"],
)
def test_bodies_that_are_not_objects(client, path, content, needle):
    r = client.post(path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_body_too_large_by_content_length(client):
    big = json.dumps({"query": "q", "documents": ["x" * 400] * 60})  # ~25 kB > 20 000 bytes
    r = client.post("/v1/rerank", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "20000 bytes" in r.json()["detail"]


def test_body_too_large_when_chunked(client):
    """No Content-Length (chunked upload): the bytes actually read are counted."""
    payload = json.dumps({"query": "q", "documents": ["x" * 400] * 60}).encode()

    def chunks():
        for i in range(0, len(payload), 4096):
            yield payload[i : i + 4096]

    r = client.post("/v1/rerank", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413


def test_small_chunked_body_is_fine(client):
    payload = json.dumps(OK).encode()
    r = client.post(
        "/v2/rerank", content=iter([payload[:5], payload[5:]]), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text


def test_wrong_method_and_unknown_path(client):
    assert client.get("/v1/rerank").status_code == 405
    r = client.post("/v3/rerank", json=OK)
    assert r.status_code == 404 and r.json()["detail"]


def test_server_never_answers_5xx_to_bad_input_and_keeps_serving(client):
    m = client.get("/metrics").json()
    assert m["errors_5xx"] == 0
    r = client.post("/v2/rerank", json=OK)
    assert r.status_code == 200


@pytest.mark.parametrize(
    "content",
    [
        b'{"query": "q", "documents": ["a"], "relevant_spans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"query": "q", "models": [{"name": "a", "input_price": NaN}]}',
        b'{"query": "q", "models": [{"name": "a", "output_price": Infinity}]}',
        b'{"query": "q", "models": [{"name": "a"}], "weight": NaN}',
    ],
    ids=["deeply-nested", "nan-price", "infinite-price", "nan-weight"],
)
def test_pathological_json_is_a_4xx(client, content):
    path = "/v1/route" if b"models" in content else "/v1/rerank"
    r = client.post(path, content=content, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize(
    "path,raw,needle",
    [
        (
            "/v2/rerank",
            b'{"query": "q", "documents": ["\\udc80 x", "y"], "return_documents": true}',
            "documents[0]",
        ),
        ("/v2/rerank", b'{"query": "\\ud800", "documents": ["x", "y"]}', "query"),
        ("/v1/route", b'{"query": "q", "models": [{"name": "\\udc80"}, {"name": "b"}]}', "models[0].name"),
    ],
)
def test_lone_surrogates_are_a_422_and_the_connection_keeps_serving(client, path, raw, needle):
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"] and "surrogate" in r.json()["detail"]
    ok = client.post("/v2/rerank", json={"query": "q", "documents": ["a", "b"]})
    assert ok.status_code == 200
