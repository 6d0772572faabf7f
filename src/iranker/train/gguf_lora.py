"""Turn a trained LoRA folder into a llama.cpp LoRA GGUF, so a llama.cpp server serves it.

    python -m iranker.train.package --gguf iranker-135m runs/iranker-135m.gguf
    python -m llama_cpp.server --model BASE.gguf --lora_path runs/iranker-135m.gguf --model_alias iranker-135m
    iranker rank --backend openai --model iranker-135m --tokenizer iranker-135m --base-url http://127.0.0.1:8000/v1 ...

The converter is llama.cpp's own ``convert_lora_to_gguf.py``. It is not in the llama-cpp-python
wheel but in its source distribution (``vendor/llama.cpp``, with the ``gguf-py`` and
``conversion`` packages it imports), so the source distribution of the installed
llama-cpp-python version is fetched once with pip (``pip download --no-binary``) and the
converter's files are kept under ``cache_dir()/llama-cpp-python-src/VERSION``; a path
(``--llama-cpp-source`` or ``$IRANKER_LLAMA_CPP_SOURCE``: the ``.tar.gz``, an extracted
source tree or a llama.cpp checkout) is used instead when given. The converter needs the
base's ``config.json``: for the embedded model that is the fp32 folder ``dense_model_dir``
already caches, and BASE.gguf is the embedded GGUF itself, the weights the adapter was
trained on. The prompt templates stay in the adapter folder's ``iranker.json``: the client
renders them (``--tokenizer`` names that folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..llm.base import BackendError
from ..llm.models import ResolvedModel, cache_dir, dense_model_dir, resolve_model

SOURCE_ENV = "IRANKER_LLAMA_CPP_SOURCE"
CONVERTER = "convert_lora_to_gguf.py"
#: what the converter imports next to itself
_NEEDED = (CONVERTER, "convert_hf_to_gguf.py", "conversion/", "gguf-py/")
OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def llama_cpp_version() -> str:
    """The installed llama-cpp-python version (its source distribution carries the converter)."""

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        raise BackendError(
            "serving through llama.cpp needs llama-cpp-python: pip install 'llama-cpp-python[server]' "
            f"(or pass --llama-cpp-source / ${SOURCE_ENV} pointing at its source distribution)"
        ) from None


def _converter_in(folder: Path) -> Path | None:
    for candidate in (folder / CONVERTER, folder / "vendor" / "llama.cpp" / CONVERTER):
        if candidate.is_file():
            return candidate
    hits = sorted(folder.glob(f"*/vendor/llama.cpp/{CONVERTER}"))
    return hits[0] if hits else None


def _extract_converter(archive: Path, dest: Path) -> Path:
    """Unpack only the converter's files of an sdist ``archive`` into ``dest``."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        with tarfile.open(archive) as tar:
            members = []
            for m in tar.getmembers():
                parts = m.name.split("/vendor/llama.cpp/", 1)
                if len(parts) == 2 and any(parts[1] == n or parts[1].startswith(n) for n in _NEEDED):
                    if m.isfile() or m.isdir():
                        members.append(m)
            if not any(m.name.endswith(f"/vendor/llama.cpp/{CONVERTER}") for m in members):
                raise BackendError(
                    f"{archive} has no vendor/llama.cpp/{CONVERTER}; is it llama-cpp-python's sdist?"
                )
            try:
                tar.extractall(tmp, members=members, filter="data")
            except TypeError:  # Python < 3.10.12 has no extraction filters; members are checked above
                tar.extractall(tmp, members=members)
        found = _converter_in(tmp)
        assert found is not None
        os.replace(found.parent, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / CONVERTER


def converter_path(source: str | os.PathLike[str] | None = None, *, fetch: bool = True) -> Path:
    """``convert_lora_to_gguf.py`` from ``source`` (archive, folder), ``$IRANKER_LLAMA_CPP_SOURCE``,
    the cache, or - when ``fetch`` - the installed version's sdist downloaded with pip."""
    given = source or os.environ.get(SOURCE_ENV)
    if given:
        path = Path(given).expanduser()
        if path.is_file() and path.name == CONVERTER:
            return path
        if path.is_dir():
            found = _converter_in(path)
            if found is None:
                raise BackendError(f"{path} holds no {CONVERTER} (looked in it and in vendor/llama.cpp/)")
            return found
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
            dest = cache_dir() / "llama-cpp-python-src" / path.name.split(".tar")[0]
            if (dest / CONVERTER).is_file():
                return dest / CONVERTER
            dest.parent.mkdir(parents=True, exist_ok=True)
            return _extract_converter(path, dest)
        raise BackendError(
            f"llama.cpp source {str(path)!r} does not exist or is not an sdist, folder or {CONVERTER}"
        )
    version = llama_cpp_version()
    dest = cache_dir() / "llama-cpp-python-src" / version
    if (dest / CONVERTER).is_file():
        return dest / CONVERTER
    if not fetch:
        raise BackendError(f"no cached llama.cpp converter for llama-cpp-python {version} in {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            "llama-cpp-python",
            "-q",
            "-d",
            tmp,
            f"llama-cpp-python=={version}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        archives = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not archives:
            tail = " ".join((done.stderr or done.stdout).split()[-40:])
            raise BackendError(
                f"could not download the llama-cpp-python {version} source distribution "
                f"(`{' '.join(cmd[2:])}`): {tail}"
            )
        return _extract_converter(archives[0], dest)


def base_config_dir(base: ResolvedModel) -> Path:
    """A folder with the base's ``config.json`` (the cached fp32 folder for a GGUF base)."""
    if base.kind == "gguf":
        return dense_model_dir(base.path)
    if base.kind == "folder":
        return Path(base.path)
    raise BackendError(
        f"the adapter's base {base.path!r} is a {base.kind} model; the converter needs a local "
        "base (a .gguf file, an alias such as smollm2-135m, or a folder with config.json)"
    )


def adapter_to_gguf(
    adapter: str, out: str | os.PathLike[str], *, source: str | None = None, outtype: str = "f16"
) -> Path:
    """Convert the LoRA folder ``adapter`` (a path or alias like ``iranker-135m``) into ``out``."""
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {OUTTYPES}")
    resolved = resolve_model(adapter)
    if resolved.kind != "adapter" or resolved.base is None:
        raise BackendError(f"{adapter!r} is not a LoRA adapter folder (needs adapter_config.json)")
    script = converter_path(source)
    base_dir = base_config_dir(resolved.base)
    out_path = Path(out).expanduser().resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    cmd = [
        sys.executable,
        str(script),
        "--base",
        str(base_dir),
        "--outtype",
        outtype,
        "--outfile",
        str(partial),
        resolved.path,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(cmd, cwd=script.parent, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise BackendError(f"{CONVERTER} failed on {resolved.path} (exit {done.returncode}):\n{tail}")
    os.replace(partial, out_path)
    return out_path


def serve_command(resolved_adapter: ResolvedModel, lora_gguf: Path, alias: str) -> str:
    """The llama-cpp-python server command that serves ``lora_gguf`` on its base."""
    base = resolved_adapter.base
    model = base.path if base is not None and base.kind == "gguf" else "BASE.gguf"
    return (
        f"python -m llama_cpp.server --model {model} --lora_path {lora_gguf} --model_alias {alias} "
        "--host 127.0.0.1 --port 8000"
    )


__all__ = ["adapter_to_gguf", "base_config_dir", "converter_path", "llama_cpp_version", "serve_command"]
