"""The optional bearer token (IRANKER_API_KEY)."""

from __future__ import annotations

import pytest
from serve_helpers import live

from iranker.serve.settings import ServeSettings

KEY = "s3cret-token"
REQ = {"query": "q", "documents": ["a", "b"]}


@pytest.fixture(scope="module")
def auth_server(monkeypatch_module):
    monkeypatch_module.setenv("IRANKER_API_KEY", KEY)
    from iranker.llm import load_backend
    from iranker.serve.app import create_app

    # settings from the environment, as `iranker serve` builds them
    app = create_app(backend=load_backend("scripted", "first"), settings=ServeSettings.from_env())
    with live(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/v1/route"])
@pytest.mark.parametrize(
    "headers,needle",
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
        ({"Authorization": f"Basic {KEY}"}, "missing bearer token"),
        ({"Authorization": "Bearer"}, "invalid"),
        ({"Authorization": KEY}, "missing bearer token"),
    ],
    ids=["none", "wrong", "basic", "empty", "no-scheme"],
)
def test_requests_without_the_right_token_get_401(auth_server, path, headers, needle):
    with auth_server.client() as c:
        r = c.post(path, json=REQ, headers=headers)
    assert r.status_code == 401
    assert needle in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_the_right_token_passes(auth_server):
    with auth_server.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.post("/v2/rerank", json=REQ).status_code == 200
        assert (
            c.post("/v1/route", json={"query": "q", "models": [{"name": "a"}, {"name": "b"}]}).status_code
            == 200
        )
        assert c.get("/metrics").status_code == 200
    with auth_server.client(headers={"authorization": f"bearer {KEY}"}) as c:  # scheme is case-insensitive
        assert c.post("/v1/rerank", json=REQ).status_code == 200


def test_only_healthz_is_open_docs_and_metrics_need_the_token(auth_server):
    """What the settings help says (issue 19): with a key, only /healthz answers without it."""
    with auth_server.client() as c:
        h = c.get("/healthz")
        assert h.status_code == 200 and h.json()["limits"]["auth"] is True
        assert KEY not in h.text
        for path in ("/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            assert c.get(path).status_code == 401, path
    with auth_server.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.get("/openapi.json").status_code == 200 and c.get("/docs").status_code == 200


def test_body_is_not_read_before_auth(auth_server):
    """An unauthenticated client gets 401, not 413, even for a huge body."""
    with auth_server.client() as c:
        r = c.post("/v1/rerank", content=b"x" * 5_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 401


def test_cohere_sdk_with_token(auth_server):
    cohere = pytest.importorskip("cohere")
    from cohere.errors import UnauthorizedError

    good = cohere.ClientV2(api_key=KEY, base_url=auth_server.url)
    assert [r.index for r in good.rerank(model="m", query="q", documents=["a", "b", "c"]).results] == [
        2,
        1,
        0,
    ]
    bad = cohere.ClientV2(api_key="nope", base_url=auth_server.url)
    with pytest.raises(UnauthorizedError):
        bad.rerank(model="m", query="q", documents=["a", "b"])


def test_auth_failures_are_counted(auth_server):
    with auth_server.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.get("/metrics").json()["auth_failures"] >= 1
