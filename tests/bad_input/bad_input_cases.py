"""Running the bad-input corpus (``corpus.json``): building a case's files, running it through
the real CLI or the real app, and judging the outcome.

Shared by the corpus test (``test_bad_input_corpus.py``) and the audit that counts outcomes
(``benchmarks/bad_input_audit.py``), so both judge a case by the same rules.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
CORPUS = json.loads((Path(__file__).with_name("corpus.json")).read_text(encoding="utf-8"))


# -- building files -----------------------------------------------------------------------------
def _set_path(record: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    target: Any = record
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is None:
        target.pop(last, None)
    else:
        target[last] = value


def _line(spec: Any) -> str:
    """One line of a case file: an ``@example``, an override of one, or raw text."""
    if isinstance(spec, str):
        if spec.startswith("@"):
            return json.dumps(CORPUS["examples"][spec[1:]], ensure_ascii=False)
        return spec
    name = next(k for k in spec if k.startswith("@"))
    record = copy.deepcopy(CORPUS["examples"][name[1:]])
    for path, value in spec[name].items():
        _set_path(record, path, value)
    if "n_candidates" in spec:
        record["candidates"] = [
            {"id": f"c{i}", "text": f"candidate {i}"} for i in range(spec["n_candidates"])
        ]
        record.pop("relevance", None)
    if "text_chars" in spec:
        record["candidates"][0]["text"] = "x" * spec["text_chars"]
    return json.dumps(record, ensure_ascii=False)


def write_files(tmp: Path, files: dict[str, dict]) -> None:
    for name, spec in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if "symlink" in spec:
            path.symlink_to(tmp / spec["symlink"])
            continue
        if "copy" in spec:
            path.write_bytes((ROOT / spec["copy"]).read_bytes())
            continue
        data = spec.get("text", "").encode("utf-8")
        if "lines" in spec:
            data = "".join(_line(s) + "\n" for s in spec["lines"]).encode("utf-8")
        if "then_raw" in spec:
            data += spec["then_raw"].encode("utf-8")
        if "then_base64" in spec:
            data += base64.b64decode(spec["then_base64"])
        if "then_nested" in spec:
            data += b"[" * spec["then_nested"] + b"]" * spec["then_nested"] + b"\n"
        path.write_bytes(data)


def snapshot(tmp: Path) -> dict[str, bytes | str]:
    """Every file under ``tmp`` (symlinks as their target), to compare before and after."""
    out: dict[str, bytes | str] = {}
    for p in sorted(tmp.rglob("*")):
        rel = str(p.relative_to(tmp))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
        elif p.is_dir() and not any(p.iterdir()):
            out[rel + "/"] = b""
    return out


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[str | None]:
    """``path`` made read-only: a read-only tmpfs mounted there as root, mode 555 otherwise.
    Yields None when it worked, else the reason it could not be made."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield None
        finally:
            path.chmod(0o755)
        return
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        yield f"cannot mount a read-only tmpfs: {proc.stderr.strip() or proc.returncode}"
        return
    try:
        yield None
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


# -- running ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one case did: exit code or HTTP status, the message, files before and after."""

    code: int
    message: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


def _dying_backend(calls: int):
    from iranker.llm import ScriptedLLM

    class Dying(ScriptedLLM):
        """The scripted backend, killed (Ctrl-C) at its ``calls``-th call: leaves a .partial."""

        made = 0

        def generate(self, prompts, **kw):
            if self.made >= calls:
                raise KeyboardInterrupt
            self.made += 1
            return super().generate(prompts, **kw)

    return Dying(ScriptedLLM.eliminate_last()._responder)


def _main(argv: list[str]) -> tuple[int, str]:
    from iranker.cli import main as cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse refusing an option: its usage line + exit 2
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


def run_cli_case(case: dict, tmp: Path) -> Outcome:
    """Build the case's files under ``tmp``, run ``iranker`` in this process, and record."""
    from iranker.cli import rank_command

    fill = lambda argv: [a.replace("{tmp}", str(tmp)) for a in argv]  # noqa: E731
    write_files(tmp, case["files"])
    if "prepare" in case:
        real = rank_command.backend_from_args
        rank_command.backend_from_args = lambda args: _dying_backend(case["prepare"]["die_after_calls"])
        try:
            code, err = _main(fill(case["prepare"]["argv"]))
        finally:
            rank_command.backend_from_args = real
        assert code == 130, f"the prepared run should be interrupted, got {code}: {err}"
    for name, text in case.get("append", {}).items():
        with open(tmp / name, "a", encoding="utf-8") as fh:
            fh.write(text)
    write_files(tmp, case.get("extra_files", {}))
    before = snapshot(tmp)
    code, err = _main(fill(case["argv"]))
    return Outcome(code, err, before, snapshot(tmp))


def http_app(settings: dict):
    from iranker.llm import load_backend
    from iranker.serve.app import create_app
    from iranker.serve.settings import ServeSettings

    return create_app(
        backend=load_backend("scripted", "first"),
        backend_name="scripted",
        settings=ServeSettings(**{**CORPUS["http_settings"], "api_key": None, **settings}),
    )


def run_http_case(case: dict, client) -> Outcome:
    """Send the case's request with ``client`` (a TestClient of ``http_app``)."""
    headers = dict(case.get("headers", {}))
    content: bytes | None = None
    if "json" in case:
        content = json.dumps(case["json"]).encode()
    elif "raw" in case:
        content = case["raw"].encode("utf-8")
    elif "raw_base64" in case:
        content = base64.b64decode(case["raw_base64"])
    elif "raw_nested" in case:
        n = case["raw_nested"]
        content = b'{"query": "q", "documents": ' + b"[" * n + b"]" * n + b"}"
    if content is not None:
        headers.setdefault("content-type", "application/json")
    url = case["path"] + (f"?{case['query']}" if case.get("query") else "")
    r = client.request(case["method"], url, content=content, headers=headers)
    try:
        message = r.json().get("detail", "")
    except ValueError:
        message = r.text
    return Outcome(r.status_code, message if isinstance(message, str) else json.dumps(message))


# -- judging ------------------------------------------------------------------------------------
#: outcome classes, in the order the audit prints them
CLASSES = ("clear error", "unclear error", "internal error", "silent wrong", "lost data")


def judge_cli(case: dict, out: Outcome) -> tuple[str, list[str]]:
    """(class, problems): what the corpus demands of a CLI case, and what is short of it."""
    problems = []
    lost = [name for name, data in out.before.items() if out.after.get(name) != data]
    left = sorted(set(out.after) - set(out.before))
    lines = [line for line in out.message.strip().splitlines() if line.strip()]
    internal = "Traceback" in out.message or "internal error" in out.message
    if lost:
        problems.append(f"changed or removed: {lost}")
    if left:
        problems.append(f"left behind: {left}")
    if out.code != case["exit"]:
        problems.append(f"exit {out.code}, expected {case['exit']}")
    if internal:
        problems.append("internal error / traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} message lines, expected 1")
    missing = [m for m in case["message"] if m.replace("{tmp}", "") not in out.message]
    if missing:
        problems.append(f"message lacks {missing}")
    if lost:
        return "lost data", problems
    if internal:
        return "internal error", problems
    if out.code == 0:
        return "silent wrong", problems
    return ("clear error" if not problems else "unclear error"), problems


def judge_http(case: dict, out: Outcome) -> tuple[str, list[str]]:
    problems = []
    if out.code != case["status"]:
        problems.append(f"status {out.code}, expected {case['status']}")
    internal = out.code >= 500 or "Traceback" in out.message or "internal error" in out.message
    if internal:
        problems.append("5xx / internal error")
    missing = [m for m in case["message"] if m not in out.message]
    if missing:
        problems.append(f"detail {out.message[:200]!r} lacks {missing}")
    if internal:
        return "internal error", problems
    if out.code < 400:
        return "silent wrong", problems
    return ("clear error" if not problems else "unclear error"), problems
