"""The trained adapter as a llama.cpp LoRA GGUF, converted by llama.cpp's own converter."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from iranker.llm.base import BackendError
from iranker.train.gguf_lora import SOURCE_ENV, adapter_to_gguf, converter_path


def _source_available() -> bool:
    if os.environ.get(SOURCE_ENV):
        return os.path.exists(os.environ[SOURCE_ENV])
    try:
        converter_path(fetch=False)
    except BackendError:
        return False
    return True


needs_source = pytest.mark.skipif(
    not _source_available(),
    reason=f"no llama-cpp-python sdist: set ${SOURCE_ENV} (make test downloads it) or run with a cached converter",
)


@needs_source
def test_iranker_135m_converts_to_a_lora_gguf(tmp_path, embedded_gguf):
    import gguf
    from safetensors import safe_open

    from iranker.llm.models import packaged_model_dir

    out = adapter_to_gguf("iranker-135m", tmp_path / "iranker-135m.gguf")
    assert out.is_file() and not (tmp_path / "iranker-135m.gguf.partial").exists()
    reader = gguf.GGUFReader(str(out))
    fields = {k: f for k, f in reader.fields.items()}

    def value(key):
        f = fields[key]
        part = f.parts[f.data[0]]
        return bytes(part).decode() if f.types[0] == gguf.GGUFValueType.STRING else part[0]

    assert value("general.type") == "adapter" and value("adapter.type") == "lora"
    assert value("adapter.lora.alpha") == 32
    with safe_open(str(packaged_model_dir() / "adapter_model.safetensors"), "pt") as f:
        n_adapter = len(list(f.keys()))
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == n_adapter  # every lora_A / lora_B of the adapter, nothing else
    a = tensors["blk.0.attn_q.weight.lora_a"]
    assert 16 in [int(x) for x in a.shape]  # rank 16


def test_a_folder_that_is_not_an_adapter_is_refused(tmp_path, embedded_gguf):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendError, match="not a LoRA adapter"):
        adapter_to_gguf(str(tmp_path), tmp_path / "x.gguf", source=str(tmp_path))


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        converter_path(str(tmp_path / "nope.tar.gz"))
    with pytest.raises(BackendError, match="holds no convert_lora_to_gguf.py"):
        converter_path(str(tmp_path))


def test_an_archive_without_the_converter_is_named(tmp_path):
    archive = tmp_path / "fake-0.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"print('hi')\n"
        info = tarfile.TarInfo("fake-0.1/setup.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BackendError, match="has no vendor/llama.cpp/convert_lora_to_gguf.py"):
        converter_path(str(archive))
