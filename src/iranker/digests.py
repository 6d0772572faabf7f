"""Content digests: what pins a file (an eval input, a model's weights) beyond its name.

One reader of file bytes for every caller (``eval`` inputs, ``thoughts collect`` sources, a
trained model's identity), so they all hash alike and in bounded memory.
"""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
