"""Which floating-point type a local model runs in, decided from the hardware.

On CPUs with AMX or AVX-512 BF16 (``amx_bf16`` / ``avx512_bf16`` in ``/proc/cpuinfo``), oneDNN
runs bfloat16 matrix products several times faster than float32: for SmolLM2-135M on one
thread, an 800-token forward took 1.59 s in fp32 and 0.44 s in bf16, forward+backward 9.9 s
vs 2.1 s. Elsewhere bf16 on CPU is emulated and slower, so the default is fp32 there.
``IRANKER_DTYPE`` overrides the choice for every backend and trainer (``float32``,
``bfloat16``, ``float16``).

Training keeps the LoRA weights and the optimizer in fp32 (peft casts adapters up), only the
frozen base runs in bf16. ``benchmarks/bf16_agreement.py`` measures how often bf16 choice
scoring picks the same candidate as fp32.
"""

from __future__ import annotations

import functools
import os
from typing import Any

DTYPE_ENV = "IRANKER_DTYPE"

DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}

#: CPU flags (Linux ``/proc/cpuinfo``) that mean native bf16 matrix products.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices natively (AMX or AVX-512 BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(f in flags for f in BF16_CPU_FLAGS)
    except OSError:
        return False
    return False


def dtype_name(dtype: str | None, device_type: str, *, cuda_bf16: bool = False) -> str:
    """The dtype name to use: ``dtype`` if given, else ``$IRANKER_DTYPE``, else by hardware
    (bf16 on a bf16-capable CPU or GPU, fp16 on other GPUs, fp32 on other CPUs)."""
    chosen = dtype if dtype is not None else (os.environ.get(DTYPE_ENV) or None)
    if chosen is not None:
        if chosen == "auto":
            return "auto"
        key = DTYPE_NAMES.get(str(chosen).lower())
        if key is None:
            raise ValueError(f"unknown dtype {chosen!r}; use float32, bfloat16, float16 or auto")
        return key
    if device_type == "cpu":
        return "bfloat16" if cpu_has_fast_bf16() else "float32"
    if device_type == "cuda":
        return "bfloat16" if cuda_bf16 else "float16"
    return "float32"


def torch_dtype(torch: Any, dtype: str | None, device: Any) -> Any:
    """``dtype_name`` as a torch dtype (or ``"auto"``) for ``device``."""
    device_type = getattr(device, "type", str(device))
    cuda_bf16 = device_type == "cuda" and bool(torch.cuda.is_bf16_supported())
    name = dtype_name(dtype, device_type, cuda_bf16=cuda_bf16)
    return "auto" if name == "auto" else getattr(torch, name)


__all__ = ["BF16_CPU_FLAGS", "DTYPE_ENV", "cpu_has_fast_bf16", "dtype_name", "torch_dtype"]
