"""Bounded load on the HTTP server over loopback: throughput, p50/p99 latency, errors.

    .venv/bin/python benchmarks/serve_load.py                      # scripted backend, 500 requests
    .venv/bin/python benchmarks/serve_load.py --backends scripted,transformers --embedded-requests 50

For each backend it starts ``iranker serve`` in a separate process on 127.0.0.1 (a free port),
waits for ``/healthz``, then for each concurrency level sends ``--requests`` Cohere-shaped
``POST /v2/rerank`` requests (``--docs`` passages each) from that many concurrent clients and
prints one markdown row: requests, errors, throughput, p50/p99 latency, and the micro-batcher's
batches and mean batch size during that level (from ``/metrics``).

Backends:
  scripted      the deterministic double: measures the server (HTTP, validation, batching)
                without a model. ``--scripted-call-ms`` adds a fixed cost per backend *call*
                (like one batched forward on an accelerator), which shows what micro-batching buys.
  transformers  a real model on CPU, by default iranker-135m in its recorded mode (``--threads``, default 1,
                ``--max-new-tokens`` per step, default 16); use few requests, it is slow on CPU.

Nothing here is a test: it prints measured numbers. ``--out FILE`` also writes them as markdown
with the command line and the date.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

PASSAGES = [
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The Treaty of Versailles formally ended the First World War in 1919.",
    "Python's asyncio module provides an event loop for concurrent I/O.",
    "Mount Kilimanjaro is the highest mountain in Africa at 5,895 metres.",
    "The mitochondrion is often called the powerhouse of the cell.",
    "BM25 scores documents by term frequency saturated by document length.",
    "The Great Barrier Reef is the world's largest coral reef system.",
    "Insulin is a hormone produced by the beta cells of the pancreas.",
    "The speed of light in vacuum is about 299,792 kilometres per second.",
    "Shakespeare wrote Hamlet around the year 1600.",
    "Rust guarantees memory safety without a garbage collector.",
]
QUERIES = [
    "when was the eiffel tower built",
    "how do plants make energy from sunlight",
    "what ended world war one",
    "highest mountain in africa",
    "what does insulin do",
    "how fast is light",
]


# ------------------------------------------------------------------------- server side --
def serve_main(args: argparse.Namespace) -> int:
    """Child process: build the backend and run uvicorn (``--_serve``)."""
    import uvicorn

    from iranker.llm import load_backend
    from iranker.serve.app import create_app
    from iranker.serve.settings import ServeSettings

    settings = ServeSettings.from_env(
        batch_window_ms=args.window_ms, max_batch=args.max_batch, request_timeout_s=args.timeout
    )
    if args._serve == "scripted":
        backend = load_backend("scripted", "last")
        if args.scripted_call_ms > 0:
            backend = _with_call_cost(backend, args.scripted_call_ms / 1000)
        model = "scripted:last"
    else:
        backend = load_backend("transformers", args.model, threads=args.threads, batch_size=args.max_batch)
        model = args.model
    app = create_app(
        backend=backend,
        settings=settings,
        backend_name=args._serve,
        model_name=model,
        max_new_tokens=args.max_new_tokens,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


def _with_call_cost(backend, seconds: float):
    generate = backend.generate

    def timed(prompts, **kw):
        time.sleep(seconds)
        return generate(prompts, **kw)

    backend.generate = timed
    return backend


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(backend: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_serve",
        backend,
        "--port",
        str(port),
        "--window-ms",
        str(args.window_ms),
        "--max-batch",
        str(args.max_batch),
        "--timeout",
        str(args.timeout),
        "--model",
        args.model,
        "--threads",
        str(args.threads),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--scripted-call-ms",
        str(args.scripted_call_ms),
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("IRANKER_API_KEY", None)
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the {backend} server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit(f"the {backend} server did not start")
        time.sleep(0.2)


# ------------------------------------------------------------------------- client side --
@dataclass
class Level:
    backend: str
    concurrency: int
    requests: int
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    batches: int = 0
    mean_batch: float = 0.0
    tokens: int = 0

    def row(self) -> list[str]:
        lat = sorted(self.latencies)

        def pct(p: float) -> str:
            if not lat:
                return "-"
            return _num(1000 * lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))])

        n_err = sum(self.errors.values())
        errs = (
            str(n_err)
            if not n_err
            else f"{n_err} ({', '.join(f'{k}: {v}' for k, v in sorted(self.errors.items()))})"
        )
        return [
            self.backend,
            str(self.concurrency),
            str(self.requests),
            errs,
            _num(self.requests / self.wall_s) if self.wall_s else "-",
            pct(0.50),
            pct(0.99),
            _num(1000 * statistics.fmean(lat)) if lat else "-",
            str(self.batches),
            f"{self.mean_batch:.2f}",
        ]


def _num(x: float) -> str:
    """One decimal for big numbers, three significant digits for small ones (slow models)."""
    return f"{x:.1f}" if x >= 10 else f"{x:.3g}"


HEADER = [
    "backend",
    "concurrency",
    "requests",
    "errors",
    "throughput (req/s)",
    "p50 (ms)",
    "p99 (ms)",
    "mean (ms)",
    "batches",
    "mean batch",
]


def body(i: int, docs: int) -> dict:
    start = (i * 5) % len(PASSAGES)
    documents = [PASSAGES[(start + j) % len(PASSAGES)] for j in range(docs)]
    return {"model": "iranker", "query": QUERIES[i % len(QUERIES)], "documents": documents, "top_n": 3}


async def run_level(url: str, backend: str, concurrency: int, n: int, docs: int, timeout: float) -> Level:
    import httpx

    level = Level(backend, concurrency, n)
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout + 30, limits=limits) as client:
        before = (await client.get("/metrics")).json()

        async def worker() -> None:
            for i in counter:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v2/rerank", json=body(i, docs))
                    ok = r.status_code == 200 and len(r.json()["results"]) == min(3, docs)
                    key = None if ok else str(r.status_code)
                except Exception as exc:  # a transport error is an error too
                    key = type(exc).__name__
                dt_s = time.perf_counter() - t0
                if key is None:
                    level.latencies.append(dt_s)
                else:
                    level.errors[key] = level.errors.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        level.wall_s = time.perf_counter() - t0
        after = (await client.get("/metrics")).json()
    b0, b1 = before["batcher"], after["batcher"]
    level.batches = b1["batches"] - b0["batches"]
    level.mean_batch = (b1["examples"] - b0["examples"]) / level.batches if level.batches else 0.0
    level.tokens = after["tokens"]["total"] - before["tokens"]["total"]
    return level


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def client_main(args: argparse.Namespace) -> int:
    levels: list[Level] = []
    for backend in args.backends.split(","):
        backend = backend.strip()
        n = args.requests if backend == "scripted" else args.embedded_requests
        print(f"# starting the {backend} server ...", file=sys.stderr)
        proc, url = start_server(backend, args)
        try:
            warm = asyncio.run(
                run_level(url, backend, 1, 2 if backend != "scripted" else 20, args.docs, args.timeout)
            )
            if warm.errors:
                print(f"warning: warm-up errors {warm.errors}", file=sys.stderr)
            for c in [int(x) for x in args.concurrency.split(",")]:
                level = asyncio.run(run_level(url, backend, c, n, args.docs, args.timeout))
                levels.append(level)
                print(markdown([level.row()]).splitlines()[-1], file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    table = markdown([lv.row() for lv in levels])
    print(table)
    if args.out:
        write_report(args, table, levels)
    return 1 if any(lv.errors for lv in levels) else 0


def write_report(args: argparse.Namespace, table: str, levels: list[Level]) -> None:
    argv = [a for a in sys.argv[1:]]
    cmd = ".venv/bin/python benchmarks/serve_load.py " + " ".join(shlex.quote(a) for a in argv)
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    settings = {
        "docs_per_request": args.docs,
        "top_n": 3,
        "batch_window_ms": args.window_ms,
        "max_batch": args.max_batch,
        "request_timeout_s": args.timeout,
        "scripted_call_ms": args.scripted_call_ms,
        "embedded_model": args.model,
        "torch_threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
    }
    text = (
        f"# Server load benchmark ({dt.date.today().isoformat()})\n\n"
        f"Command:\n\n```\n{cmd}\n```\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}. Client and server "
        "share the machine (server in a separate process, loopback HTTP).\n\n"
        f"Settings: `{json.dumps(settings)}`\n\n{table}\n"
    )
    if args.notes:
        text += "\n" + open(args.notes, encoding="utf-8").read()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"# wrote {args.out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="scripted", help="comma list: scripted, transformers")
    p.add_argument("--requests", type=int, default=500, help="requests per level, scripted backend")
    p.add_argument("--embedded-requests", type=int, default=50, help="requests per level, transformers")
    p.add_argument("--concurrency", default="1,4,16", help="comma list of concurrent clients")
    p.add_argument("--docs", type=int, default=5, help="documents per request")
    p.add_argument("--window-ms", type=float, default=5.0, help="server batch window")
    p.add_argument("--max-batch", type=int, default=16, help="server max batch")
    p.add_argument("--timeout", type=float, default=600.0, help="server request timeout (s)")
    p.add_argument(
        "--model",
        default="iranker-135m",
        help="model for the transformers backend (default: the trained default, in its recorded mode)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (transformers)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="tokens per elimination step")
    p.add_argument(
        "--scripted-call-ms",
        type=float,
        default=0.0,
        help="fixed cost per scripted backend call (models a batched accelerator)",
    )
    p.add_argument("--out", default=None, help="also write a markdown report here")
    p.add_argument("--notes", default=None, help="markdown file appended to the report")
    p.add_argument("--_serve", default=None, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._serve:
        return serve_main(args)
    return client_main(args)


if __name__ == "__main__":
    sys.exit(main())
