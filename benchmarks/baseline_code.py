"""Today's KV-session code, read from git, beside the current one in the same process.

Benchmarks report ratios against today's code path *from one run* (the machine is shared and
noisy: two runs minutes apart are not comparable). ``session_module(rev)`` loads
``src/iranker/llm/{kv_eviction,choice_tree,base,stop}.py`` as they were at git revision
``rev`` into a private package, so a benchmark can rank with the session of ``rev`` and with
the current one, interleaved, on the same loaded model. Those four files import nothing else
from iranker, which is what makes this possible; ``BaselineSessions`` wraps a backend so that
``IterativeRanker(reuse="kv")`` uses the old session.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FILES = ("base", "stop", "choice_tree", "kv_eviction")


def session_module(rev: str) -> types.ModuleType:
    """The ``kv_eviction`` module of git revision ``rev`` (imported under a private name)."""
    name = f"_iranker_at_{rev.replace('-', '_').replace('~', '_').replace('^', '_')}"
    if f"{name}.kv_eviction" in sys.modules:
        return sys.modules[f"{name}.kv_eviction"]
    folder = Path(tempfile.mkdtemp(prefix="iranker-rev-")) / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for f in FILES:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:src/iranker/llm/{f}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        # imports from outside ``iranker.llm`` (``..parsing``) come from the installed package
        text = re.sub(r"^(\s*)from \.\.(\w)", r"\1from iranker.\2", text, flags=re.M)
        (folder / f"{f}.py").write_text(text)
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)  # type: ignore[union-attr]
    return importlib.import_module(f"{name}.kv_eviction")


class BaselineSessions:
    """A backend proxy whose eviction sessions are ``rev``'s ``KVEvictionSession`` (all else delegated)."""

    def __init__(self, llm: Any, rev: str) -> None:
        self._llm = llm
        self._session_class = session_module(rev).KVEvictionSession
        self.name = llm.name
        self.rev = rev

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._llm.generate(*args, **kwargs)

    def choice_logprobs(self, *args: Any, **kwargs: Any) -> Any:
        return self._llm.choice_logprobs(*args, **kwargs)

    def eviction_session(self, **options: Any) -> Any:
        return self._session_class(self._llm, **options)
