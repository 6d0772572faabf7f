"""`iranker serve` wiring: the argparse hook, settings precedence, and a real subprocess."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from iranker.cli.errors import run_command
from iranker.serve.command import add_parser, backend_kwargs, run, settings_from_args
from iranker.serve.settings import ServeSettings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iranker")
    add_parser(p.add_subparsers(dest="command"))
    return p


def test_add_parser_registers_serve_with_run():
    args = parser().parse_args(
        [
            "serve",
            "--backend",
            "scripted",
            "--model",
            "first",
            "--port",
            "0",
            "--max-documents",
            "5",
            "--timeout",
            "2.5",
            "--batch-window-ms",
            "0",
        ]
    )
    assert args.func is run
    assert (args.host, args.port, args.backend, args.method) == ("127.0.0.1", 0, "scripted", "iterative")
    s = settings_from_args(args)
    assert s.max_documents == 5 and s.request_timeout_s == 2.5 and s.batch_window_ms == 0
    assert s.max_doc_chars == ServeSettings().max_doc_chars


def test_backend_kwargs():
    p = parser()
    a = p.parse_args(["serve", "--backend", "transformers", "--threads", "1", "--max-batch", "4"])
    assert backend_kwargs(a, settings_from_args(a)) == {"threads": 1, "batch_size": 4}
    a = p.parse_args(["serve", "--backend", "openai", "--model", "m", "--base-url", "http://x/v1"])
    assert backend_kwargs(a, settings_from_args(a)) == {"base_url": "http://x/v1"}


def test_settings_env_overrides_and_flag_precedence():
    env = {"IRANKER_MAX_DOCUMENTS": "7", "IRANKER_API_KEY": "k", "IRANKER_REQUEST_TIMEOUT_S": "3"}
    s = ServeSettings.from_env(env)
    assert (s.max_documents, s.api_key, s.request_timeout_s) == (7, "k", 3.0)
    assert ServeSettings.from_env(env, max_documents=9).max_documents == 9
    assert "k" not in repr(s) and "api_key" not in s.public()
    with pytest.raises(ValueError, match="IRANKER_MAX_DOCUMENTS"):
        ServeSettings.from_env({"IRANKER_MAX_DOCUMENTS": "many"})
    with pytest.raises(ValueError, match="max_batch"):
        ServeSettings(max_batch=0)
    assert ServeSettings.from_env({"IRANKER_API_KEY": ""}).api_key is None


def test_bad_backend_choice_exits_cleanly(capsys):
    a = parser().parse_args(["serve", "--backend", "scripted", "--model", "sideways"])
    assert run_command(run, a) == 2
    assert "scripted backend takes" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_m_iranker_serve_starts_a_real_server():
    port = free_port()
    env = {**os.environ, "IRANKER_API_KEY": "abc"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iranker.serve",
            "--backend",
            "scripted",
            "--model",
            "first",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--max-documents",
            "3",
            "--header-timeout",
            "0.5",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                h = httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stderr.read() if proc.poll() is not None else "no start")
                time.sleep(0.1)
        assert h.json()["backend"] == "scripted" and h.json()["limits"]["max_documents"] == 3
        auth = {"Authorization": "Bearer abc"}
        r = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": ["a", "b"]}, headers=auth)
        assert [x["index"] for x in r.json()["results"]] == [1, 0]
        assert (
            httpx.post(
                f"{url}/v1/rerank", json={"query": "q", "documents": ["a"] * 4}, headers=auth
            ).status_code
            == 413
        )
        assert httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": ["a"]}).status_code == 401
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:  # headers never finish
            slow.sendall(b"POST /v1/rerank HTTP/1.1\r\nhost: x\r\n")
            reply = b""
            while chunk := slow.recv(4096):  # the server closes it: recv returns b"" (or times out: fail)
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 408 ") and b"within 0.5 s" in reply
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "serving scripted:first" in proc.stderr.read()


def test_served_ranker_uses_the_trained_templates_of_the_backend():
    """A trained folder records its prompt templates; the server must prompt it the same way."""
    from iranker.building import build_ranker
    from iranker.llm import ScriptedLLM
    from iranker.scenarios import PromptTemplate, get_scenario

    trained = {
        "passage": PromptTemplate.from_dict(
            {**get_scenario("passage").template.to_dict(), "response_prefix": "<think>"}
        )
    }
    llm = ScriptedLLM.eliminate_last()
    llm.templates = trained
    assert build_ranker(llm).templates == trained
    assert build_ranker(llm, templates={}).templates == {}  # an explicit override wins


def test_the_scripted_backend_of_serve_keeps_a_bounded_call_log():
    """A long-running `iranker serve --backend scripted` kept every prompt (issue 19: about
    10.5 MB per 1,000 requests); it keeps the last SCRIPTED_KEEP_CALLS and counts the rest."""
    from fastapi.testclient import TestClient

    from iranker.llm import load_backend
    from iranker.serve.app import create_app
    from iranker.serve.command import SCRIPTED_KEEP_CALLS

    a = parser().parse_args(["serve", "--backend", "scripted", "--model", "first", "--batch-window-ms", "0"])
    settings = settings_from_args(a)
    backend = load_backend(a.backend, a.model, **backend_kwargs(a, settings))
    n = SCRIPTED_KEEP_CALLS + 40
    with TestClient(create_app(backend=backend, settings=settings)) as c:
        for i in range(n):
            assert c.post("/v1/rerank", json={"query": f"q{i}", "documents": ["a", "b"]}).status_code == 200
    assert backend.n_calls == n and len(backend.calls) == SCRIPTED_KEEP_CALLS
    assert "q" + str(n - 1) in backend.calls[-1][0][1]["content"]  # the newest are the ones kept
