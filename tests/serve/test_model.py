"""End to end with the real embedded model (SmolLM2-135M on CPU, 1 thread)."""

from __future__ import annotations

import pytest
from serve_helpers import TEST_LIMITS, live

from iranker.serve.app import create_app
from iranker.serve.settings import ServeSettings


@pytest.mark.model
def test_rerank_and_route_with_the_embedded_model(embedded_llm):
    app = create_app(
        backend=embedded_llm,
        settings=ServeSettings(**TEST_LIMITS),
        backend_name="transformers",
        model_name="smollm2-135m",
        max_new_tokens=16,
    )
    docs = [
        "Paris is the capital and largest city of France.",
        "Bananas are rich in potassium.",
        "The Louvre museum is in Paris.",
    ]
    with live(app) as srv, srv.client(timeout=300) as c:
        assert c.get("/healthz").json()["backend"] == "transformers"
        r = c.post(
            "/v2/rerank",
            json={
                "model": "x",
                "query": "What is the capital of France?",
                "documents": docs,
                "return_trace": True,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert sorted(x["index"] for x in body["results"]) == [0, 1, 2]
        assert [x["relevance_score"] for x in body["results"]] == pytest.approx([1.0, 2 / 3, 1 / 3], abs=1e-6)
        steps = body["trace"]["steps"]
        assert len(steps) == 2 and all(s["raw"] is not None for s in steps)
        assert body["meta"]["tokens"]["input_tokens"] > 0
        assert 0 < body["meta"]["tokens"]["output_tokens"] <= 16 * body["meta"]["backend_calls"]
        # zero-shot SmolLM2-135M may not follow the format: every step says how it was decided
        assert all(s["how_matched"] for s in steps)

        r = c.post(
            "/v1/route",
            json={
                "query": "Write a haiku",
                "objective": "balance",
                "models": [
                    {"name": "big", "description": "large", "input_price": 10},
                    {"name": "small", "description": "tiny", "input_price": 0.1},
                ],
            },
        )
        assert r.status_code == 200, r.text
        assert sorted(x["name"] for x in r.json()["results"]) == ["big", "small"]
        assert c.get("/metrics").json()["errors_5xx"] == 0
