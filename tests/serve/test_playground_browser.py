"""The playground in a real browser: Debian's headless Chromium against a running server.

A person's path through the page: fill the passage tab, press Rank, read the ranking, step
through the eliminations (or play them), and see the API's own reason when a request is bad.
The page must agree with a direct API call on the same input. Screenshots go to each test's
tmp_path; ``IRANKER_SCREENSHOT_DIR=DIR`` also keeps the default model's screenshot there (the
one committed under results/2026-12-03-playground/).
"""

from __future__ import annotations

import os
import shutil
import zlib
from pathlib import Path

import httpx
import pytest
from browser_helpers import PlaygroundPage, full_page_png, launch_chromium, require_browser, serve_process
from serve_helpers import TEST_LIMITS, live

from iranker.llm import ScriptedLLM
from iranker.rankers import IterativeRanker
from iranker.serve.app import create_app
from iranker.serve.settings import ServeSettings

QUERY = "how do bees make honey"
DOCS = [
    "Bees collect nectar from flowers and store it in their honey stomach.",
    "In the hive, worker bees pass the nectar mouth to mouth, adding enzymes that break down sugars.",
    "They fan the cells with their wings until the water evaporates and the nectar thickens into honey.",
    "Bumblebees are larger and hairier than honey bees.",
    "Honey never spoils: jars thousands of years old were found edible.",
]


@pytest.fixture(scope="module")
def chrome(tmp_path_factory):
    require_browser()
    driver = launch_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def scripted_url(chrome):
    """`iranker serve --backend scripted --model first`: the ranking is the input reversed."""
    with serve_process("--backend", "scripted", "--model", "first") as url:
        yield url


def direct(url: str, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=headers, timeout=300)


def test_scripted_server_passage_tab_ranks_steps_and_shows_the_422_reason(chrome, scripted_url, tmp_path):
    url = scripted_url
    page = PlaygroundPage(chrome, url).open()
    assert "scripted:first" in page.el("server-info").text  # from the open /healthz
    page.fill_passage(QUERY, DOCS)
    assert page.submit("passage") == "done", page.error_text()

    api = direct(url, "/v2/rerank", {"query": QUERY, "documents": DOCS, "return_trace": True}).json()
    assert page.ranking_indices() == [r["index"] for r in api["results"]] == [4, 3, 2, 1, 0]
    assert len(page.step_chips()) == len(DOCS) - 1 == len(api["trace"]["steps"])

    # step 1: the whole pool, the first shown ([1]) removed, the model's raw answer shown
    rows = page.pool_rows()
    assert len(rows) == len(DOCS)
    removed = [r for r in rows if "removed" in r.get_attribute("class")]
    assert [r.get_attribute("data-id") for r in removed] == [api["trace"]["steps"][0]["removed"]] == ["0"]
    step = page.el("step").text
    assert "Step 1 of 4" in step and "<answer>[1]</answer>" in step and "the first one fits least" in step
    full_page_png(chrome, tmp_path / "scripted-step1.png")

    # step through, then play to the end
    page.el("step-next").click()
    assert page.current_step() == 1 and len(page.pool_rows()) == len(DOCS) - 1
    page.el("step-last").click()
    assert page.current_step() == 3 and len(page.pool_rows()) == 2
    page.el("step-first").click()
    page.el("step-play").click()
    page.wait(lambda: page.current_step() == 3, timeout=15)
    assert page.el("step-play").text == "Play"  # stopped by itself at the last step

    # an empty query: the server's 422 reason, verbatim, in the page
    reason = direct(url, "/v2/rerank", {"query": "", "documents": DOCS, "return_trace": True})
    assert reason.status_code == 422
    page.fill_passage("", DOCS)
    assert page.submit("passage") == "error"
    shown = page.error_text()
    assert "422" in shown and reason.json()["detail"] in shown and "query" in shown
    assert not page.el("result").is_displayed()
    full_page_png(chrome, tmp_path / "scripted-422.png")


def _lp(messages, choice: str) -> float:
    """A fixed, uneven log-probability per label, so the bars differ from step to step."""
    return -(zlib.crc32(choice.encode()) % 1000) / 250.0


def test_choice_scoring_draws_a_bar_per_candidate_with_the_trace_probabilities(chrome, tmp_path):
    ranker = IterativeRanker(ScriptedLLM(lambda m: "", logprob_fn=_lp), decode="choice", show_progress=False)
    app = create_app(ranker, settings=ServeSettings(**TEST_LIMITS), model_name="scripted-choice")
    with live(app) as srv:
        page = PlaygroundPage(chrome, srv.url).open()
        page.fill_passage(QUERY, DOCS)
        assert page.submit("passage") == "done", page.error_text()
        steps = direct(
            srv.url, "/v2/rerank", {"query": QUERY, "documents": DOCS, "return_trace": True}
        ).json()["trace"]["steps"]
        for i, s in enumerate(steps):
            page.step_chips()[i].click()
            rows = page.pool_rows()
            assert [r.get_attribute("data-id") for r in rows] == s["pool"]
            shown = [r.find_element("css selector", ".pct").text for r in rows]
            assert shown == [f"{100 * p:.1f}%" for p in s["probs"]]
            widest = max(range(len(rows)), key=lambda j: s["probs"][j])
            assert "removed" in rows[widest].get_attribute("class")
        full_page_png(chrome, tmp_path / "choice.png")


def test_with_an_api_key_the_page_asks_for_it_and_sends_it_as_the_bearer_token(chrome):
    key = "browser-test-key"
    with serve_process("--backend", "scripted", "--model", "last", env={"IRANKER_API_KEY": key}) as url:
        page = PlaygroundPage(chrome, url).open()
        assert page.el("key-box").is_displayed()
        page.fill_passage(QUERY, DOCS[:3])
        assert page.submit("passage") == "error" and "needs an API key" in page.error_text()
        page.type_into("api-key", "wrong")
        assert page.submit("passage") == "error"
        assert "401" in page.error_text() and "invalid bearer token" in page.error_text()
        page.type_into("api-key", key)
        assert page.submit("passage") == "done", page.error_text()
        assert page.ranking_indices() == [0, 1, 2] and len(page.step_chips()) == 2


def test_routing_and_recommendation_tabs_rank_their_demo_examples(chrome, scripted_url):
    url = scripted_url
    page = PlaygroundPage(chrome, url).open()
    page.load_example("routing", 0)
    assert page.submit("routing") == "done", page.error_text()
    assert page.ranking_indices() == [4, 3, 2, 1, 0] and len(page.step_chips()) == 4
    assert "best choice" in page.el("ranking").text  # the demo's best LLM is marked
    page.load_example("recommendation", 0)
    assert page.submit("recommendation") == "done", page.error_text()
    assert page.ranking_indices() == list(range(9, -1, -1)) and len(page.step_chips()) == 9


@pytest.mark.model
def test_the_default_model_on_a_demo_example(chrome, tmp_path):
    """The shipped iranker-135m (choice scoring + KV eviction) behind `iranker serve`."""
    with serve_process("--threads", "1") as url:
        page = PlaygroundPage(chrome, url).open()
        page.load_example("passage", 0)
        query = page.el("passage-query").get_attribute("value")
        docs = [d for d in page.el("passage-docs").get_attribute("value").split("\n") if d.strip()]
        assert page.submit("passage", timeout=300) == "done", page.error_text()
        api = direct(url, "/v2/rerank", {"query": query, "documents": docs, "return_trace": True}).json()
        assert api["trace"]["method"] == "iterative-choice-kv"
        assert page.ranking_indices() == [r["index"] for r in api["results"]]
        assert len(page.step_chips()) == len(docs) - 1
        for i, s in enumerate(api["trace"]["steps"]):
            page.step_chips()[i].click()
            rows = page.pool_rows()
            assert [r.find_element("css selector", ".pct").text for r in rows] == [
                f"{100 * p:.1f}%" for p in s["probs"]
            ]
        page.step_chips()[0].click()
        shot = full_page_png(chrome, tmp_path / "default-model.png")
        keep = os.environ.get("IRANKER_SCREENSHOT_DIR")
        if keep:
            shutil.copy(shot, Path(keep) / "playground.png")


def test_a_server_timeout_is_shown_with_the_server_s_reason(chrome):
    import time

    def slow(messages):
        time.sleep(0.5)
        return "<answer>[1]</answer>"

    app = create_app(
        backend=ScriptedLLM(slow), settings=ServeSettings(**{**TEST_LIMITS, "request_timeout_s": 0.2})
    )
    with live(app) as srv:
        page = PlaygroundPage(chrome, srv.url).open()
        page.fill_passage(QUERY, DOCS[:3])
        assert page.submit("passage") == "error"
        shown = page.error_text()
        assert "504" in shown and "took longer than the 0.2 s timeout" in shown


def test_without_the_browser_it_skips_with_the_install_command_and_fails_under_ci(monkeypatch):
    import browser_helpers

    monkeypatch.setattr(browser_helpers, "browser_paths", lambda: (None, "/usr/bin/chromedriver"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception,
        match="missing chromium; install it with: apt-get install -y chromium chromium-driver",
    ):
        browser_helpers.require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium chromium-driver"):
        browser_helpers.require_browser()
