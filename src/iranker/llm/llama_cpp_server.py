"""Start llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) on loopback.

The tests and ``benchmarks/served_choice.py`` rank through the server a user would run, as a
child process on a free port with one thread. Its verbose log goes to a file: llama.cpp's
performance counters there are the only place this server says how many prompt tokens it
evaluated rather than took from its KV cache (``evaluated_from_log``). Only the process
started here is ever stopped, by its PID.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    """``with LlamaCppServer(gguf, alias, log) as srv: srv.base_url`` (``lora`` adds --lora_path)."""

    def __init__(
        self,
        gguf: str | os.PathLike[str],
        alias: str,
        log: str | os.PathLike[str],
        *,
        lora: str | os.PathLike[str] | None = None,
        n_ctx: int = 4096,
        threads: int = 1,
        startup_timeout: float = 300.0,
    ) -> None:
        self.port = free_port()
        self.log = Path(log)
        self.cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--model_alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            str(threads),
            "--n_threads_batch",
            str(threads),
            "--n_ctx",
            str(n_ctx),
            "--verbose",
            "true",
        ]
        if lora is not None:
            self.cmd += ["--lora_path", str(lora)]
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LlamaCppServer":
        self._handle = open(self.log, "w")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(self.cmd, stdout=self._handle, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with {self.proc.returncode}: {self.log_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"llama_cpp.server did not answer within {self.startup_timeout:g}s: {self.log_text()[-2000:]}"
        )

    def log_text(self) -> str:
        self._handle.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self._handle.close()

    def __enter__(self) -> "LlamaCppServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def evaluated_from_log(text: str) -> list[int]:
    """Prompt tokens llama.cpp evaluated, one entry per request, from the verbose log.

    With ``--verbose true`` llama-cpp-python resets llama.cpp's performance counters before
    each completion and prints them after it; ``prompt eval time = X ms / N tokens`` counts the
    prompt tokens that were not served from the KV cache (the prefix it reused is not in N).
    """

    return [int(n) for n in re.findall(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens", text)]
