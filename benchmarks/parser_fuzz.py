"""10,000 adversarial model answers through the parser: 0 exceptions, 0 wrong valid matches.

The CI test (``tests/test_parsing_safety.py``) runs the same property on 2,000 seeded
examples; this runs it on more (default 10,000, seeded) plus the hostile-input timing ratios,
and prints one line each. It reuses the test's strategies and assertions rather than copying
them, so the benchmark checks exactly what CI checks, only longer::

    python benchmarks/parser_fuzz.py [--examples 10000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_property_module():
    spec = importlib.util.spec_from_file_location("parsing_safety", ROOT / "tests" / "test_parsing_safety.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=10_000)
    args = ap.parse_args(argv)
    os.environ["IRANKER_FUZZ_EXAMPLES"] = str(args.examples)  # read by the test module when loaded
    mod = load_property_module()
    prop = mod.test_fuzz_no_exception_and_no_wrong_valid_match
    t0 = time.perf_counter()
    try:
        prop()
    except Exception as exc:  # noqa: BLE001 - report, then fail the script
        print(f"FAILED after {time.perf_counter() - t0:.1f} s: {type(exc).__name__}: {exc}")
        return 1
    dt = time.perf_counter() - t0
    print(
        f"fuzz: {args.examples} seeded answers (match_candidate, parse_order, closest_candidate, extract): "
        f"0 exceptions, 0 wrong valid matches, {dt:.1f} s ({1000 * dt / args.examples:.2f} ms/answer)"
    )
    for name in (
        "test_unclosed_think_tags_are_linear_not_quadratic",
        "test_parse_order_over_long_candidates_is_bounded",
    ):
        t0 = time.perf_counter()
        getattr(mod, name)()
        print(f"{name}: passed ({time.perf_counter() - t0:.1f} s; bounds are ratios to a normal input)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
