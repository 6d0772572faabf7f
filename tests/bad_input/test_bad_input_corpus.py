"""Every case of the bad-input corpus (``corpus.json``), CLI and HTTP, in one parametrised test.

A CLI case runs ``iranker rank``/``eval`` in this process with the scripted backend and must
exit with its code, print one line holding every ``message`` string (the field or the path)
and no traceback or internal error, leave no file behind and every file it started with
(the input, a ``.partial`` to resume) unchanged byte for byte. An HTTP case is sent to the
real app (FastAPI's TestClient) and must answer its status with a detail naming the field.
"""

from __future__ import annotations

import importlib.util

import pytest
from bad_input_cases import (
    CORPUS,
    http_app,
    judge_cli,
    judge_http,
    read_only_dir,
    run_cli_case,
    run_http_case,
)

HAVE_SERVE = all(importlib.util.find_spec(m) for m in ("fastapi", "httpx"))
CASES = [pytest.param("cli", c, id=f"cli: {c['name']}") for c in CORPUS["cli"]] + [
    pytest.param(
        "http",
        c,
        id=f"http: {c['name']}",
        marks=[] if HAVE_SERVE else [pytest.mark.skip(reason="needs the serve extra")],
    )
    for c in CORPUS["http"]
]


@pytest.fixture(scope="module")
def clients():
    """One TestClient per distinct settings of the HTTP cases, opened on first use."""
    opened: dict = {}

    def get(settings: dict):
        from fastapi.testclient import TestClient

        key = repr(sorted(settings.items()))
        if key not in opened:
            opened[key] = TestClient(http_app(settings)).__enter__()
        return opened[key]

    yield get
    for c in opened.values():
        c.__exit__(None, None, None)


@pytest.mark.parametrize("kind, case", CASES)
def test_bad_input_case(kind, case, tmp_path, clients):
    if kind == "cli":
        if case.get("needs") == "read_only_dir":
            with read_only_dir(tmp_path / "ro") as why_not:
                if why_not:
                    pytest.skip(why_not)
                out = run_cli_case(case, tmp_path)
        else:
            out = run_cli_case(case, tmp_path)
        verdict, problems = judge_cli(case, out)
    else:
        out = run_http_case(case, clients(case.get("settings", {})))
        verdict, problems = judge_http(case, out)
    assert verdict == "clear error" and not problems, f"{verdict}: {problems}; message: {out.message!r}"
