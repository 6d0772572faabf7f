"""The playground: one self-contained page at ``GET /`` that watches the model eliminate.

The page (``static/playground.html`` + ``.css`` + ``.js``, inlined here into one response) is
a plain client of the server's own public API: it posts to ``/v2/rerank`` and ``/v1/route``
with ``return_trace: true`` and draws the trace (the pool at every step, each candidate's
probability of being named worst when the ranker scores choices, the removed one). It loads
nothing from anywhere: no CDN, no fonts, no second request for assets; a Content-Security-
Policy that allows only this origin (and only the page's own script, by hash) makes that a
property of the response rather than a promise.

The demo examples of ``iranker demo`` (routing and passage examples shipped with iranker,
MovieLens-100k users when the ``recbole`` package is installed) are embedded as JSON, built
once on the first request. The page carries no secret and no model output: with an API key
configured it asks the user for the key and sends it as the bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from importlib import resources
from typing import Any

from .. import demo as demo_examples  # by module: looked up when the page is built
from ..types import RankingExample
from .settings import ServeSettings

log = logging.getLogger("iranker.serve")

PATH = "/"
#: examples per scenario embedded in the page (the demo's own count)
DEMO_PER_SCENARIO = 5
_PLACEHOLDERS = re.compile(r"/\*__CSS__\*/|__CONFIG_JSON__|/\*__SCRIPT__\*/")


def _static(name: str) -> str:
    return (resources.files("iranker.serve") / "static" / name).read_text(encoding="utf-8")


def _relevant_indices(example: RankingExample) -> list[int]:
    return [i for i, c in enumerate(example.candidates) if example.relevance.get(c.id, 0) > 0]


def _best_index(example: RankingExample) -> int | None:
    best = example.best_id()
    return None if best is None else example.candidate_ids.index(best)


def _passage(example: RankingExample) -> dict[str, Any]:
    return {
        "title": example.query,
        "query": example.query,
        "documents": [c.text for c in example.candidates],
        "relevant": _relevant_indices(example),
        "best": _best_index(example),
    }


def _routing(example: RankingExample) -> dict[str, Any]:
    models = []
    for c in example.candidates:
        m: dict[str, Any] = {"name": str(c.meta.get("name") or c.id), "description": c.text}
        for key in ("input_price", "output_price"):
            if c.meta.get(key) is not None:
                m[key] = float(c.meta[key])
        models.append(m)
    return {
        "title": example.query,
        "query": example.query,
        "objective": str(example.meta.get("objective") or "performance"),
        "models": models,
        "relevant": _relevant_indices(example),
        "best": _best_index(example),
    }


def _recommendation(example: RankingExample) -> dict[str, Any]:
    history = [str(h) for h in example.meta.get("history") or []]
    user = example.meta.get("user")
    title = f"user {user}: … {history[-1]}" if user and history else example.id
    return {
        "title": title,
        "history": history,
        "documents": [c.text for c in example.candidates],
        "domain": str(example.meta.get("domain") or "movie"),
        "relevant": _relevant_indices(example),
        "best": _best_index(example),
    }


def demo_payload(per_scenario: int = DEMO_PER_SCENARIO) -> dict[str, Any]:
    """The demo examples in the shapes the page's three forms take.

    Recommendation examples need the ml-100k files of the ``recbole`` package; without it the
    tab still works on typed input and says how to get the examples (``notes``).
    """
    out: dict[str, Any] = {
        "passage": [_passage(e) for e in demo_examples.packaged_examples("demo_passage")[:per_scenario]],
        "routing": [_routing(e) for e in demo_examples.packaged_examples("demo_routing")[:per_scenario]],
        "recommendation": [],
        "notes": {},
    }
    try:
        out["recommendation"] = [
            _recommendation(e) for e in demo_examples.recommendation_examples(per_scenario)
        ]
    except FileNotFoundError as exc:
        out["notes"]["recommendation"] = str(exc)
    return out


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (no ``</script>`` break-out)."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def _sha256_source(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def page_config(settings: ServeSettings, demo: dict[str, Any]) -> dict[str, Any]:
    """What the page needs to know before its first request. No secret and nothing that
    ``/healthz`` (open) does not already say: whether a key is needed, the limits, the demo."""
    return {
        "auth": settings.api_key is not None,
        "timeout_s": settings.request_timeout_s,
        "max_documents": settings.max_documents,
        "demo": demo,
    }


def render_page(config: dict[str, Any]) -> tuple[str, str]:
    """(html, content_security_policy): the template with its CSS, script and config inlined."""
    script = _static("playground.js")
    parts = {
        "/*__CSS__*/": _static("playground.css"),
        "__CONFIG_JSON__": _json_for_script(config),
        "/*__SCRIPT__*/": script,
    }
    # one pass, so text inside one part (a demo document, say) is never taken for a placeholder
    html = _PLACEHOLDERS.sub(lambda m: parts[m.group(0)], _static("playground.html"))
    csp = (
        "default-src 'none'; "
        f"script-src '{_sha256_source(script)}'; "
        "style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, csp


class Playground:
    """Builds the page once (the demo examples take ~2 s to read) and serves it thereafter."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._page: tuple[str, str] | None = None

    def page(self) -> tuple[str, str]:
        with self._lock:
            if self._page is None:
                try:
                    demo = demo_payload()
                except Exception as exc:  # noqa: BLE001 - the page must still load without examples
                    log.warning("playground: demo examples unavailable (%s)", exc)
                    demo = {
                        "passage": [],
                        "routing": [],
                        "recommendation": [],
                        "notes": {"all": f"demo examples unavailable: {exc}"},
                    }
                self._page = render_page(page_config(self.settings, demo))
            return self._page


def add_playground(app: Any, settings: ServeSettings) -> None:
    """Register ``GET /`` on ``app`` (kept out of the OpenAPI schema: it is not an API)."""
    from fastapi.responses import HTMLResponse

    playground = Playground(settings)

    @app.get(PATH, include_in_schema=False)
    def index() -> HTMLResponse:  # sync: FastAPI runs it in a thread, the first build does not block
        html, csp = playground.page()
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": csp,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )
