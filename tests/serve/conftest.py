"""Fixtures for the server tests (helpers live in ``serve_helpers.py``).

Without the ``serve`` extra (fastapi, uvicorn) the whole directory is skipped at collection.
"""

from __future__ import annotations

import importlib.util
from typing import Iterator

import pytest

MISSING = [m for m in ("fastapi", "uvicorn", "httpx") if importlib.util.find_spec(m) is None]

if MISSING:
    collect_ignore_glob = ["test_*.py"]
else:
    from serve_helpers import LiveServer, live, scripted_app

    @pytest.fixture(scope="module")
    def server() -> Iterator[LiveServer]:
        with live(scripted_app()) as srv:
            yield srv

    @pytest.fixture()
    def client(server):
        with server.client() as c:
            yield c
