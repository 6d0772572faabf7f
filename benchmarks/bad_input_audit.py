"""Count what bad input does to the CLI and the server: clear error, internal error, silent wrong, lost data.

    PYTHONPATH=src .venv/bin/python benchmarks/bad_input_audit.py [--kills 10] [--slow 50] [--out FILE]

The counts issue 19 asked to re-measure, from one run of the code on ``PYTHONPATH``:

- **corpus**: every case of ``tests/bad_input/corpus.json`` (CLI and HTTP), judged by the rules
  of its test (``tests/bad_input/bad_input_cases.py``).
- **mutations**: hostile values (wrong types, empty, out of range, a 401-digit integer, NaN, ...)
  put into one field of a valid routing or passage example at a time, sent through
  ``iranker rank`` (a file) and, where the field exists there, the server (a body). Every
  one is invalid input: exit 0 / 2xx counts as silent wrong. A clear error must name the field.
- **kill -9 + --resume**: ``iranker rank`` on 300 examples killed at a random moment, resumed
  until done; output not byte-identical to an uninterrupted run, or an input file changed,
  counts as lost data.
- **slow clients**: connections to a real ``iranker serve`` holding partial headers or a
  partial body; one still open after its timeout + 5 s counts as silent wrong (it holds a slot
  forever).

Prints a markdown table; nothing here is a test (the corpus test is). Takes about a minute.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "bad_input"))

from bad_input_cases import (  # noqa: E402
    CLASSES,
    CORPUS,
    http_app,
    judge_cli,
    judge_http,
    read_only_dir,
    run_cli_case,
    run_http_case,
)

HUGE = "1" + "0" * 400
#: raw JSON texts of hostile values (raw, so NaN and huge integers survive)
HOSTILE = {
    "number": ["-1", '"1"', "true", "[]", "{}", HUGE, "1" + "0" * 5000, "NaN", "Infinity", '""'],
    "weight": ["-0.1", "1.5", '"0.5"', "true", "[]", "{}", HUGE, "NaN", '"balance"'],
    "objective": ['"cheap"', "1", "[]", "{}", '""', '"COST"', "true"],
    "text": ['""', '" "', '"\\n\\t"', "5", "null", "[]", "{}", '"x\\ud800"'],
    "id": ['""', "true", "null", "[]", "1.5", "{}"],
    "query": ['""', '"  "', "5", "null", "[]"],
    "candidates": ["[]", '"ab"', '[{"id": "a", "text": "x"}]', "null", "{}"],
}
#: (field, hostile kind, how to set it in the CLI record, how to set it in a server body or None)
MUTATIONS = [
    ("input_price", "number", ("routing", "candidates.0.input_price"), ("route", "models.0.input_price")),
    ("output_price", "number", ("routing", "candidates.1.output_price"), ("route", "models.1.output_price")),
    ("weight", "weight", ("routing", "weight"), ("route", "weight")),
    ("objective", "objective", ("routing", "objective"), ("route", "objective")),
    ("text", "text", ("passage", "candidates.1.text"), ("rerank", "documents.1")),
    ("id", "id", ("passage", "candidates.1.id"), None),
    ("id", "id", ("passage", "id"), None),
    ("query", "query", ("passage", "query"), ("rerank", "query")),
    ("candidates", "candidates", ("passage", "candidates"), ("rerank", "documents")),
]
BODIES = {
    "route": {
        "query": "q",
        "models": [{"name": "a", "input_price": 1}, {"name": "b", "output_price": 2}],
        "objective": "balance",
    },
    "rerank": {"query": "q", "documents": ["a", "b"]},
}
MARK = "__HOSTILE__"


def _put(record: dict, path: str, marker: str = MARK) -> str:
    keys = path.split(".")
    target = record
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = marker
    else:
        target[last] = marker
    return json.dumps(record)


def mutation_cases() -> list[tuple[str, str, str | None]]:
    """(name, CLI line, server body or None) for every hostile value of every mutated field."""
    out = []
    for field, kind, (example, path), server in MUTATIONS:
        for raw in HOSTILE[kind]:
            record = copy.deepcopy(CORPUS["examples"][example])
            if field == "weight":
                record.pop("objective", None)
            line = _put(record, path).replace(f'"{MARK}"', raw)
            body = None
            if server is not None and not (
                kind == "candidates" and raw.startswith("[{")
            ):  # 1 document is fine there
                b = copy.deepcopy(BODIES[server[0]])
                if field == "weight":
                    b.pop("objective", None)
                body = (server[0], _put(b, server[1]).replace(f'"{MARK}"', raw))
            needle = (
                "digits" if len(raw) > 4300 else field
            )  # not JSON: no field to name, the line or body is named
            out.append((f"{example}.{path} = {raw[:20]}", needle, line, body))
    return out


# -- runs ---------------------------------------------------------------------------------------
def audit_corpus(counts: dict[str, Counter], failures: list[str]) -> None:
    from fastapi.testclient import TestClient

    clients: dict[str, TestClient] = {}
    for case in CORPUS["cli"]:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            if case.get("needs") == "read_only_dir":
                with read_only_dir(tmp / "ro") as why_not:
                    if why_not:
                        continue
                    verdict, problems = _judged_cli(case, tmp)
            else:
                verdict, problems = _judged_cli(case, tmp)
        counts["corpus: CLI"][verdict] += 1
        if problems:
            failures.append(f"CLI {case['name']}: {verdict}: {problems}")
    for case in CORPUS["http"]:
        key = json.dumps(case.get("settings", {}), sort_keys=True)
        if key not in clients:
            clients[key] = TestClient(http_app(case.get("settings", {}))).__enter__()
        try:
            verdict, problems = judge_http(case, run_http_case(case, clients[key]))
        except Exception as exc:  # noqa: BLE001 - an app that raises is an internal error
            verdict, problems = "internal error", [f"{type(exc).__name__}: {exc}"]
        counts["corpus: HTTP"][verdict] += 1
        if problems:
            failures.append(f"HTTP {case['name']}: {verdict}: {problems}")
    for c in clients.values():
        c.__exit__(None, None, None)


def _judged_cli(case: dict, tmp: Path):
    try:
        return judge_cli(case, run_cli_case(case, tmp))
    except Exception as exc:  # noqa: BLE001
        return "internal error", [f"{type(exc).__name__}: {exc}"]


def audit_mutations(counts: dict[str, Counter], failures: list[str]) -> None:
    from fastapi.testclient import TestClient

    with TestClient(http_app({})) as client:
        for name, field, line, body in mutation_cases():
            with tempfile.TemporaryDirectory() as d:
                tmp = Path(d)
                case = {
                    "name": name,
                    "files": {"in.jsonl": {"text": line + "\n"}},
                    "argv": [
                        "rank",
                        "-i",
                        "{tmp}/in.jsonl",
                        "-o",
                        "{tmp}/out.jsonl",
                        "--backend",
                        "scripted",
                        "-q",
                    ],
                    "exit": 2,
                    "message": ["in.jsonl:1:", field],
                }
                verdict, problems = _judged_cli(case, tmp)
            counts["mutations: CLI"][verdict] += 1
            if problems:
                failures.append(f"mutation CLI {name}: {verdict}: {problems}")
            if body is None:
                continue
            kind, text = body
            http_case = {
                "name": name,
                "method": "POST",
                "path": "/v1/route" if kind == "route" else "/v1/rerank",
                "raw": text,
                "status": 0,
                "message": [field if field != "text" else "documents"],
            }
            if field == "candidates":
                http_case["message"] = ["documents"]
            out = run_http_case(http_case, client)
            verdict, problems = judge_http(
                {**http_case, "status": out.code if 400 <= out.code < 500 else 422}, out
            )
            counts["mutations: HTTP"][verdict] += 1
            if problems:
                failures.append(f"mutation HTTP {name}: {verdict}: {problems}")


def audit_kills(n: int, counts: dict[str, Counter], failures: list[str], seed: int = 0) -> None:
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT / "src"))}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "in.jsonl"
        rows = [
            {
                "id": f"q{i}",
                "scenario": "passage",
                "query": f"query {i}",
                "candidates": [{"id": f"c{j}", "text": f"passage {i}-{j}"} for j in range(8)],
            }
            for i in range(300)
        ]
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
        before = src.read_bytes()
        cmd = [
            sys.executable,
            "-m",
            "iranker.cli",
            "rank",
            "-i",
            str(src),
            "--backend",
            "scripted",
            "-q",
            "--batch-size",
            "4",
        ]
        subprocess.run(cmd + ["-o", str(tmp / "ref.jsonl")], env=env, check=True, capture_output=True)
        ref = (tmp / "ref.jsonl").read_bytes()
        for k in range(n):
            out = tmp / f"run{k}.jsonl"
            proc = subprocess.Popen(
                cmd + ["-o", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.6, 2.0))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            verdict, why = "clear error", ""
            r = subprocess.run(cmd + ["-o", str(out), "--resume"], env=env, capture_output=True, text=True)
            if "internal error" in r.stderr or "Traceback" in r.stderr:
                verdict, why = "internal error", r.stderr.strip()[-300:]
            elif r.returncode != 0:
                verdict, why = "unclear error", f"--resume refused: {r.stderr.strip()[-300:]}"
            elif not out.exists() or out.read_bytes() != ref:
                verdict, why = "lost data", "output differs from an uninterrupted run"
            if src.read_bytes() != before:
                verdict, why = "lost data", "the input changed"
            counts["kill -9 + --resume (300 ex.)"][verdict] += 1
            if why:
                failures.append(f"kill cycle {k}: {verdict}: {why}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def audit_slow_clients(
    n: int, counts: dict[str, Counter], failures: list[str], timeout_s: float = 1.0
) -> None:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT / "src"))}
    help_text = subprocess.run(
        [sys.executable, "-m", "iranker.serve", "--help"], env=env, capture_output=True, text=True
    ).stdout
    port = _free_port()
    flags = (
        ["--header-timeout", str(timeout_s), "--body-timeout", str(timeout_s)]
        if "--header-timeout" in help_text
        else []
    )
    flags += ["--max-connections", str(4 * n)] if "--max-connections" in help_text else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iranker.serve",
            "--backend",
            "scripted",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--no-access-log",
            *flags,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("iranker serve did not start")
                time.sleep(0.1)
        socks = []
        body = json.dumps({"query": "q", "documents": ["a", "b"]}).encode()
        for i in range(2 * n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2 == 0:
                s.sendall(b"POST /v1/rerank HTTP/1.1\r\nhost: x\r\ncontent-")
            else:
                s.sendall(
                    b"POST /v1/rerank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body[:5]
                )
            socks.append(s)
        time.sleep(timeout_s + 5)
        for i, s in enumerate(socks):
            s.setblocking(False)
            data, closed = b"", False
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        closed = True
                        break
                    data += chunk
            except BlockingIOError:
                pass
            what = "partial headers" if i % 2 == 0 else "partial body"
            verdict = (
                "clear error"
                if closed and data.startswith(b"HTTP/1.1 408")
                else "silent wrong"
                if not closed
                else "unclear error"
            )
            counts[f"slow clients ({what})"][verdict] += 1
            s.close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # still serving?
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            if not s.recv(100).startswith(b"HTTP/1.1 200"):
                failures.append("the server did not answer /healthz after the slow clients")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10, help="kill -9 + --resume cycles (default 10)")
    ap.add_argument("--slow", type=int, default=50, help="slow clients of each kind (default 50)")
    ap.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = ap.parse_args(argv)
    failures: list[str] = []
    counts: dict[str, Counter] = defaultdict(Counter)
    audit_corpus(counts, failures)
    audit_mutations(counts, failures)
    if args.kills:
        audit_kills(args.kills, counts, failures)
    if args.slow:
        audit_slow_clients(args.slow, counts, failures)
    lines = ["| inputs | tried | " + " | ".join(CLASSES) + " |", "|---|" + "---|" * (len(CLASSES) + 1)]
    total = Counter()
    for name, c in counts.items():
        total.update(c)
        lines.append(f"| {name} | {sum(c.values())} | " + " | ".join(str(c[k]) for k in CLASSES) + " |")
    lines.append(
        f"| **all** | **{sum(total.values())}** | " + " | ".join(f"**{total[k]}**" for k in CLASSES) + " |"
    )
    table = "\n".join(lines)
    print(table)
    if failures:
        print(f"\n{len(failures)} case(s) short of a clear error:", *failures, sep="\n- ")
    if args.out:
        Path(args.out).write_text(
            f"{dt.date.today()} `{' '.join(sys.argv)}`\n\n{table}\n"
            + ("".join(f"\n- {f}" for f in failures) + "\n" if failures else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
