"""An unmerged fp32 LoRA adapter at inference, in fewer passes over the activations.

PEFT's ``lora.Linear`` computes ``y = to_base(W·x + (B·(A·x32))·s)``: the base product in the
base's dtype (bf16 on AMX CPUs), the adapter in fp32. Per adapted layer and forward that is
the base product, a cast of ``x`` to fp32, two rank-r products, a multiplication by ``s``, an
addition that first copies ``W·x`` to fp32, and a cast back - several passes over
``[tokens, out]`` fp32 tensors, plus PEFT's per-call Python. For iranker-135m (r = 16 on all
seven projections, 210 adapted layers) this tripled the cost of a prefill on one thread here
(``benchmarks/step_profile.py``).

``FusedLoRALinear`` computes the same sum with less work, and the same numbers:

- ``s`` is folded into ``B`` once at load when it is a power of two (``lora_alpha / r = 2``
  for iranker-135m): multiplying by a power of two is exact in floating point, so
  ``(s·B)·h == s·(B·h)`` bit for bit; any other ``s`` keeps the multiplication;
- ``W·x`` is added in place to the fp32 adapter output (``d += W·x``: the same fp32 addition
  as PEFT's ``W·x + d``, without its fp32 copy of ``W·x``), then cast back once;
- layers that read the same input (q/k/v, gate/up) share one fp32 cast of it.

Only plain LoRA is fused (one adapter, no DoRA or other variant, no dropout at inference, no
``fan_in_fan_out``, no LoRA bias); any other layer keeps PEFT's own forward, which computes
the same thing more slowly. ``fuse_lora`` returns the underlying transformers model (no PEFT
wrapper), like ``merge_and_unload``.
"""

from __future__ import annotations

import math
from typing import Any


def _power_of_two(x: float) -> bool:
    if x <= 0 or not math.isfinite(x):
        return False
    m, _ = math.frexp(x)
    return m == 0.5


#: sibling projections that read the same input in Llama-style blocks (share one fp32 cast)
SHARED_INPUTS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class _SharedCast:
    """The fp32 copy of an input read by ``consumers`` sibling layers, made once.

    It is dropped after the last consumer used it, so no activation outlives its forward.
    """

    __slots__ = ("consumers", "source", "cast", "uses")

    def __init__(self, consumers: int = 1) -> None:
        self.consumers = consumers
        self.source: Any = None
        self.cast: Any = None
        self.uses = 0

    def get(self, x: Any, dtype: Any) -> Any:
        if x.dtype == dtype:
            return x
        if self.consumers == 1:
            return x.to(dtype)
        if self.source is not x or self.cast is None or self.cast.dtype != dtype:
            self.source, self.cast, self.uses = x, x.to(dtype), 0
        cast = self.cast
        self.uses += 1
        if self.uses >= self.consumers:
            self.source = self.cast = None
        return cast


def fused_lora_linear_class() -> type:
    """``FusedLoRALinear`` (built on first use: torch is imported only here)."""
    global _FUSED
    if _FUSED is not None:
        return _FUSED
    import torch

    class FusedLoRALinear(torch.nn.Module):
        """``base(x) + s·B(A(x))`` in fp32, cast to the base's dtype: PEFT's unmerged LoRA sum."""

        def __init__(self, base: Any, lora_a: Any, lora_b: Any, scaling: float, shared: _SharedCast) -> None:
            super().__init__()
            self.base_layer = base
            folded = _power_of_two(float(scaling))
            self.rank = int(lora_a.shape[0])
            self.lora_a = torch.nn.Parameter(lora_a.detach().clone(), requires_grad=False)
            b = lora_b.detach().clone()
            self.lora_b = torch.nn.Parameter(b * float(scaling) if folded else b, requires_grad=False)
            self.scaling = None if folded else float(scaling)
            self._shared = shared

        @property
        def weight(self) -> Any:  # what callers of an nn.Linear may read
            return self.base_layer.weight

        def forward(self, x: Any) -> Any:
            out = self.base_layer(x)
            h = torch.nn.functional.linear(self._shared.get(x, self.lora_a.dtype), self.lora_a)
            d = torch.nn.functional.linear(h, self.lora_b)
            if self.scaling is not None:
                d = d * self.scaling
            d += out
            return d.to(out.dtype)

    _FUSED = FusedLoRALinear
    return FusedLoRALinear


_FUSED: type | None = None


def _plain_lora(module: Any) -> tuple[Any, Any, float] | None:
    """(A weight, B weight, scaling) when ``module`` is a plain, unmerged single-adapter LoRA linear."""
    try:
        from peft.tuners.lora import Linear as LoraLinear
    except ImportError:  # pragma: no cover - peft is needed to load an adapter at all
        return None
    if not isinstance(module, LoraLinear) or getattr(module, "merged", False) or module.disable_adapters:
        return None
    active = list(module.active_adapters)
    if len(active) != 1 or set(module.lora_A.keys()) != set(active):
        return None
    name = active[0]
    if getattr(module, "lora_variant", {}).get(name) is not None or module.use_dora.get(name, False):
        return None
    if getattr(module, "fan_in_fan_out", False) or getattr(module, "lora_bias", {}).get(name, False):
        return None
    dropout = module.lora_dropout[name]
    if type(dropout).__name__ != "Identity" and float(getattr(dropout, "p", 0.0)) != 0.0:
        return None
    base = module.base_layer
    if type(base).__name__ != "Linear":
        return None
    return module.lora_A[name].weight, module.lora_B[name].weight, float(module.scaling[name])


def fuse_lora(model: Any) -> tuple[Any, int, int]:
    """Replace every plain LoRA linear of a PEFT model by ``FusedLoRALinear``.

    Returns ``(model, fused, kept)``: the underlying transformers model when every LoRA layer
    was fused (else the PEFT model, partly fused), and how many layers were fused / kept as
    PEFT layers. Layers that are siblings in one parent and read the same input share its
    fp32 cast.
    """
    fused_cls = fused_lora_linear_class()
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    fused = kept = 0
    for parent in list(inner.modules()):
        children = dict(parent.named_children())
        plain = {name: parts for name, child in children.items() if (parts := _plain_lora(child)) is not None}
        kept += sum(
            1
            for name, child in children.items()
            if name not in plain and type(child).__module__.startswith("peft.tuners.lora")
        )
        casts: dict[str, _SharedCast] = {}
        for group in SHARED_INPUTS:
            members = [n for n in group if n in plain]
            shared = _SharedCast(len(members))
            casts.update({n: shared for n in members})
        for name, (a, b, scaling) in plain.items():
            shared = casts.get(name) or _SharedCast(1)
            setattr(parent, name, fused_cls(children[name].base_layer, a, b, scaling, shared))
            fused += 1
    return (inner if kept == 0 else model), fused, kept


__all__ = ["fuse_lora", "fused_lora_linear_class"]
