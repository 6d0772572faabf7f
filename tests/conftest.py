"""Shared test setup: offline, single-threaded, and one embedded model per session.

The environment variables are set at import time, before any test imports
huggingface_hub/transformers (which read them once): tests never touch the network, and use
one torch thread because the CI machines have 2 shared cores (oversubscribing slowed a
forward pass 5-13x).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("IRANKER_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


@pytest.fixture(scope="session")
def embedded_gguf():
    """The embedded SmolLM2-135M GGUF file, without loading it; skips when its package is missing
    (tests of what resolves an adapter onto its base need the base to resolve)."""
    from iranker.llm.models import EmbeddedModelMissingError, embedded_gguf_path

    try:
        return embedded_gguf_path()
    except EmbeddedModelMissingError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def embedded_llm():
    """The real embedded SmolLM2-135M on CPU with 1 thread, in fp32, loaded once per session.

    fp32 because several tests check that two computations agree to ~1e-4 (KV eviction vs
    re-prompting); the bf16 default on AMX CPUs is measured by ``benchmarks/bf16_agreement.py``
    and exercised by the end-to-end tests that load their own backend.

    The first run ever dequantises the GGUF into the user cache (~20-30 s); later sessions
    load the cached fp32 folder in a few seconds. Skips when the model or torch is missing.
    """
    from iranker.llm.base import MissingExtraError
    from iranker.llm.models import EmbeddedModelMissingError

    try:
        from iranker.llm.transformers_backend import TransformersLLM

        return TransformersLLM("smollm2-135m", threads=1, dtype="float32")
    except (EmbeddedModelMissingError, MissingExtraError) as exc:
        pytest.skip(f"embedded model unavailable: {exc}")


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster with 2 CPUs for the ``--ray`` tests, started once per session.

    Starting Ray takes ~20-30 s on the shared 2-core machines, so every test that shards over
    Ray uses this one session (the commands reuse an initialised Ray instead of starting their
    own). Its workers inherit this environment (offline mode, one thread). Skips without ray.
    """
    import logging

    ray = pytest.importorskip("ray")
    from iranker.sharding.cluster import start_local

    start_local(
        ray, 2, logging_level=logging.ERROR, log_to_driver=False
    )  # ray.init(num_cpus=2), retried if slow
    yield ray
    ray.shutdown()
