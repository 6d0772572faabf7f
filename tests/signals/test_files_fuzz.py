"""The interactions and outcomes files are user text: any bytes either parse or give one
``path:line:`` DataError, never another exception."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iranker.data.io import DataError
from iranker.signals.files import read_interactions, read_outcomes

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
records = st.one_of(
    st.fixed_dictionaries({"items": json_values}, optional={"user": json_values}),
    st.fixed_dictionaries({"query": json_values, "outcomes": json_values}, optional={"id": json_values}),
    json_values,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.one_of(records.map(lambda r: json.dumps(r)), st.text(max_size=20)), min_size=0, max_size=4),
    st.binary(max_size=8),
)
def test_fuzz_files(tmp_path, lines, tail):
    f = tmp_path / "f.jsonl"
    f.write_bytes(("\n".join(lines)).encode("utf-8", "surrogatepass") + b"\n" + tail)
    for reader in (read_interactions, read_outcomes):
        try:
            recs = reader(f)
        except DataError as exc:
            assert str(exc).startswith(str(f) + ":")
            continue
        assert recs
        for r in recs:
            if reader is read_outcomes:
                assert r.query.strip() and all(math.isfinite(v) for v in r.scores.values())
            else:
                assert r.items and all(isinstance(i, str) and i.strip() for i in r.items)
