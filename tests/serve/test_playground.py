"""The playground page at GET / (serve/playground.py), without a browser: what it is sent with.

The browser test (test_playground_browser.py) drives it; these check the response itself: one
self-contained document whose Content-Security-Policy allows only this origin and only its own
script, demo examples in the shapes the API accepts, and no secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from serve_helpers import live, scripted_app

from iranker.serve.playground import demo_payload, render_page


def _config(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="config">(.*?)</script>', html, re.S)
    assert m, "the page embeds its config"
    return json.loads(m.group(1))


def _inline_script(html: str) -> str:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1, "exactly one executable script, inline"
    return scripts[0]


def test_the_page_is_one_self_contained_document(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    # nothing to fetch: no external scripts, styles, fonts, images or links off this origin
    assert not re.search(r"https?://", html)
    refs = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert refs and all(ref.startswith(("/", "data:")) and not ref.startswith("//") for ref in refs), refs
    assert "/*__" not in html and "__CONFIG_JSON__" not in html  # every placeholder was filled


def test_the_csp_allows_only_this_origin_and_the_page_s_own_script(client):
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    script = _inline_script(r.text)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp  # a script changed in transit would not run
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_page_is_not_part_of_the_api_schema(client):
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_demo_examples_are_embedded_and_accepted_by_the_api(client):
    config = _config(client.get("/").text)
    demo = config["demo"]
    assert {k: len(demo[k]) for k in ("passage", "routing", "recommendation")} == {
        "passage": 5,
        "routing": 5,
        "recommendation": 5,
    }
    assert config["auth"] is False and config["timeout_s"] > 0
    # the shapes the page posts, exactly as it builds them from an example
    p, r, rec = demo["passage"][0], demo["routing"][0], demo["recommendation"][0]
    bodies = [
        (
            "/v2/rerank",
            {"query": p["query"], "documents": p["documents"], "return_trace": True},
            len(p["documents"]),
        ),
        (
            "/v1/route",
            {"query": r["query"], "objective": r["objective"], "models": r["models"], "return_trace": True},
            len(r["models"]),
        ),
        (
            "/v2/rerank",
            {
                "scenario": "recommendation",
                "history": rec["history"],
                "documents": rec["documents"],
                "domain": rec["domain"],
                "return_trace": True,
            },
            len(rec["documents"]),
        ),
    ]
    for path, body, n in bodies:
        res = client.post(path, json=body)
        assert res.status_code == 200, res.text
        assert len(res.json()["trace"]["steps"]) == n - 1
    assert p["best"] in p["relevant"] and r["best"] == r["relevant"][0]


def test_with_an_api_key_the_page_is_open_says_so_and_holds_no_key():
    key = "page-must-not-show-this"
    with live(scripted_app(api_key=key)) as srv, srv.client() as c:
        r = c.get("/")
        assert r.status_code == 200
        assert key not in r.text and _config(r.text)["auth"] is True
        assert c.post("/v2/rerank", json={"query": "q", "documents": ["a", "b"]}).status_code == 401


def test_without_recbole_the_recommendation_tab_says_how_to_get_examples(monkeypatch):
    import iranker.demo as demo

    def missing(*a, **k):
        raise FileNotFoundError("install it with: pip install --no-deps recbole==1.2.1")

    monkeypatch.setattr(demo, "recommendation_examples", missing)
    payload = demo_payload()
    assert payload["recommendation"] == [] and "recbole" in payload["notes"]["recommendation"]
    assert len(payload["passage"]) == 5


def test_text_in_the_examples_cannot_end_the_config_script():
    hostile = {"demo": {"passage": [{"title": "</script><script>alert(1)</script>", "x": "/*__SCRIPT__*/"}]}}
    html, _ = render_page(hostile)
    config = _config(html)
    assert config == hostile
    assert "</script><script>alert" not in html
    assert len(re.findall(r"<script>", html)) == 1


@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_metrics_count_the_page_by_its_path(client, path):
    client.get(path)
    assert path in client.get("/metrics").json()["endpoints"]
