"""Connecting to Ray: an existing cluster by its address, or a local one started for the run.

``ray.init`` with an address nobody listens on retries for minutes, so an address is
checked first: its form (``host:port``, ``ray://host:port`` or ``auto``), then that a TCP
connection opens within a few seconds. Every failure is a :class:`ClusterError` with one
line saying what to do.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from dataclasses import dataclass
from typing import Any

from ..llm.base import require

#: the ``--ray`` value when no address is given: start a local cluster for this run
LOCAL = "local"
#: environment variables of the driver that the workers of a cluster given by address get too
#: (model cache, offline mode, dtype, threads, the key of an OpenAI-compatible server); the
#: workers of a local cluster inherit the whole environment
FORWARDED_ENV_PREFIXES = ("IRANKER_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "OPENAI_")
#: seconds to wait for a TCP connection to the cluster's address
CONNECT_TIMEOUT = 5.0
#: tries to start a local cluster (see :func:`start_local`)
LOCAL_START_ATTEMPTS = 3

_ADDRESS = re.compile(r"(?P<scheme>ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")


class ClusterError(RuntimeError):
    """Ray cannot be reached or started; the message says why in one line."""


@dataclass
class Cluster:
    """The Ray cluster a run uses.

    ``started_here`` is true when this process called ``ray.init`` (it then disconnects at
    the end, which also stops a local cluster it started); false when Ray was already
    initialised by the caller (a test, a notebook), whose session is left alone.
    """

    address: str
    cpus: int
    started_here: bool

    def describe(self) -> str:
        where = "a local Ray cluster" if self.address == LOCAL else f"the Ray cluster at {self.address}"
        return f"{where} ({self.cpus} CPUs)"

    def close(self) -> None:
        if self.started_here:
            import ray

            ray.shutdown()


def require_ray() -> Any:
    """``import ray``, or ``MissingExtraError`` naming ``pip install 'iranker[ray]'``."""

    return require("ray", "ray", "sharding over Ray workers (--ray)")


def check_address(value: str) -> str:
    """``value`` if it is ``local``, ``auto``, ``host:port`` or ``ray://host:port``, else ClusterError."""
    value = value.strip()
    if value in (LOCAL, "auto") or _ADDRESS.fullmatch(value):
        return value
    raise ClusterError(
        f"--ray address {value!r} is not host:port, ray://host:port or auto "
        "(give the address `ray start --head` prints, e.g. 10.0.0.5:6379, or no address for a local cluster)"
    )


def _check_reachable(address: str) -> None:
    m = _ADDRESS.fullmatch(address)
    if m is None:
        return
    host, port = m["host"].strip("[]"), int(m["port"])
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: {reason} "
            "(start one with `ray start --head` and pass the address it prints)"
        ) from None


def _resolve_auto(ray: Any) -> str:
    """The address ``auto`` stands for ($RAY_ADDRESS, else the last ``ray start`` here)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # pragma: no cover - a Ray without this helper: let ray.init resolve it
        return "auto"
    try:
        return str(canonicalize_bootstrap_address_or_die("auto"))
    except (ConnectionError, ValueError) as exc:
        raise ClusterError(f"--ray auto: {str(exc).splitlines()[0]}") from None


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


def cluster_cpus(ray: Any) -> int:
    return int(ray.cluster_resources().get("CPU", 0))


def connect(address: str = LOCAL, *, num_cpus: int | None = None) -> Cluster:
    """Connect to the cluster at ``address``, or start a local one with ``num_cpus`` CPUs.

    An address is checked (form, then a TCP connection) even when Ray is already initialised
    in this process; that session is then used as it is (a test's or a notebook's cluster).
    """
    ray = require_ray()
    address = check_address(address)
    target = address
    if address != LOCAL:
        target = _resolve_auto(ray) if address == "auto" else address
        _check_reachable(target)
    if ray.is_initialized():
        return Cluster(address=address, cpus=cluster_cpus(ray), started_here=False)
    debug = bool(os.environ.get("IRANKER_DEBUG"))
    common: dict[str, Any] = dict(logging_level=logging.INFO if debug else logging.ERROR, log_to_driver=debug)
    if (
        address == LOCAL
    ):  # its workers inherit this process's environment (a runtime_env would only slow them)
        start_local(ray, num_cpus or os.cpu_count() or 1, **common)
    else:
        try:
            ray.init(address=target, runtime_env={"env_vars": forwarded_env()}, **common)
        except Exception as exc:  # noqa: BLE001
            raise ClusterError(
                f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}"
            ) from None
    return Cluster(address=address, cpus=cluster_cpus(ray), started_here=True)


def start_local(ray: Any, num_cpus: int, *, attempts: int = LOCAL_START_ATTEMPTS, **init_kwargs: Any) -> None:
    """``ray.init`` a local cluster, trying again when it does not come up in time.

    Ray gives its node processes fixed windows to start (30 s for the raylet to register,
    less for its agents); on a loaded machine, and under ``nice``, they can miss them. The
    next attempt usually makes it.

    The workers run at this process's priority (``worker_niceness=0``): by default Ray makes
    every worker 15 nicer than the raylet, so on a busy machine a sharded run would compute
    at a lower priority than the same run in one process.
    """
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                _system_config={"worker_niceness": 0},
                **init_kwargs,
            )
            return
        except Exception as exc:  # noqa: BLE001 - any start failure is one line for the user
            ray.shutdown()
            if attempt == attempts:
                raise ClusterError(
                    f"cannot start a local Ray cluster ({attempts} attempts): {_first_line(exc)}"
                ) from None
            print(
                f"ray: the local cluster did not start ({_first_line(exc)[:80]}); trying again",
                file=sys.stderr,
            )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
