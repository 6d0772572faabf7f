"""Server settings: limits, the optional API key, the timeout and the micro-batcher knobs.

Every field has a default, an ``IRANKER_<FIELD>`` environment override and (for most) a
``iranker serve`` flag. Precedence: explicit argument (the CLI flag) > environment > default.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ..example_fields import MAX_CANDIDATE_CHARS, MAX_CANDIDATES


def _env_name(name: str) -> str:
    return f"IRANKER_{name.upper()}"


@dataclass
class ServeSettings:
    """Limits and behaviour of one server. ``help`` metadata doubles as CLI help text."""

    max_documents: int = field(
        default=MAX_CANDIDATES,
        metadata={"help": "most documents (or models) one request may rank (413 above)"},
    )
    max_doc_chars: int = field(
        default=MAX_CANDIDATE_CHARS,
        metadata={"help": "most characters in one document, description or history item (413 above)"},
    )
    max_query_chars: int = field(default=8000, metadata={"help": "most characters in a query (413 above)"})
    max_history: int = field(
        default=100, metadata={"help": "most history items in a recommendation request (413 above)"}
    )
    max_body_bytes: int = field(
        default=2_000_000, metadata={"help": "largest request body in bytes (413 above)"}
    )
    request_timeout_s: float = field(
        default=120.0, metadata={"help": "seconds a request may wait for its ranking before a 504"}
    )
    header_timeout_s: float = field(
        default=10.0,
        metadata={"help": "seconds a client has to send a request's headers (408 and closed after)"},
    )
    body_timeout_s: float = field(
        default=30.0,
        metadata={"help": "seconds a client has to send a request's body (408 and closed after)"},
    )
    max_connections: int = field(
        default=256, metadata={"help": "most open client connections; a request beyond them gets 503 at once"}
    )
    batch_window_ms: float = field(
        default=5.0,
        metadata={"help": "how long the micro-batcher waits for more requests before ranking a batch"},
    )
    max_batch: int = field(
        default=16, metadata={"help": "most requests ranked together in one batched elimination"}
    )
    max_queue: int = field(
        default=1024, metadata={"help": "most requests waiting for the ranker before 503 (overloaded)"}
    )
    api_key: str | None = field(
        default=None,
        metadata={
            "help": "if set, every endpoint but /healthz (the API docs too) needs 'Authorization: Bearer <key>'"
        },
        repr=False,
    )

    def __post_init__(self) -> None:
        for name in (
            "max_documents",
            "max_doc_chars",
            "max_query_chars",
            "max_history",
            "max_body_bytes",
            "max_batch",
            "max_queue",
            "max_connections",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("request_timeout_s", "header_timeout_s", "body_timeout_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if self.batch_window_ms < 0:
            raise ValueError(f"batch_window_ms must be >= 0, got {self.batch_window_ms!r}")
        if self.api_key == "":
            self.api_key = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "ServeSettings":
        """Defaults, then ``IRANKER_*`` variables, then ``overrides`` that are not None."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(_env_name(f.name))
            if raw is None or raw == "":
                continue
            kind = type(f.default) if f.default is not None else str
            try:
                values[f.name] = kind(raw) if kind is not bool else raw.lower() in ("1", "true", "yes")
            except ValueError:
                raise ValueError(f"{_env_name(f.name)}={raw!r} is not a valid {kind.__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The settings without the secret (for /healthz and logs)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        d["auth"] = self.api_key is not None
        return d
