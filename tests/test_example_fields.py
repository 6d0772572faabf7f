"""One validation of example fields for the CLI and the server (issue 19 point 3).

The same value of a price, a routing weight or objective, or a candidate text is accepted by
both doors or refused by both: ``iranker rank`` reading it from a file and the server reading
it from a request body. Hypothesis draws arbitrary JSON values; a table holds the ones that
disagreed before (a 401-digit price, ``"0.5"`` and ``true`` as weights, both fields given).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iranker.data.io import DataError, example_from_record
from iranker.example_fields import ExampleLimits, FieldError, objective_or_weight, price

pydantic = pytest.importorskip("pydantic")
from iranker.serve.schemas import RerankRequest, RouteRequest  # noqa: E402

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def cli_accepts(record: dict) -> bool:
    """What `iranker rank` does with the record as a line of its input (JSON round trip)."""
    try:
        example_from_record(json.loads(json.dumps(record)))
    except DataError:
        return False
    return True


def server_accepts(model, body: dict) -> bool:
    try:
        model.model_validate(json.loads(json.dumps(body)))
    except pydantic.ValidationError:
        return False
    return True


def routing_record(**fields) -> dict:
    cand = {"id": "a", "text": "model a", **{k: v for k, v in fields.items() if k.endswith("_price")}}
    top = {k: v for k, v in fields.items() if not k.endswith("_price")}
    return {
        "id": "r",
        "scenario": "routing",
        "query": "q",
        "candidates": [cand, {"id": "b", "text": "model b"}],
        **top,
    }


def route_body(**fields) -> dict:
    model = {"name": "a", **{k: v for k, v in fields.items() if k.endswith("_price")}}
    top = {k: v for k, v in fields.items() if not k.endswith("_price")}
    return {"query": "q", "models": [model, {"name": "b"}], **top}


FIELD_CASES = [
    ({"input_price": 10**400}, False),  # passed the CLI, then OverflowError in the prompt
    ({"input_price": 1.5}, True),
    ({"output_price": 0}, True),
    ({"output_price": -0.01}, False),
    ({"input_price": "1"}, False),
    ({"input_price": True}, False),
    ({"weight": "0.5"}, False),  # coerced by the CLI before
    ({"weight": True}, False),  # coerced by the CLI before
    ({"weight": 0.5, "objective": "cost"}, False),  # silently accepted by the CLI before
    ({"weight": 0.5}, True),
    ({"weight": 0}, True),
    ({"weight": 1.01}, False),
    ({"objective": "cost"}, True),
    ({"objective": "cheap"}, False),
    ({"objective": 1}, False),
]


@pytest.mark.parametrize("fields, ok", FIELD_CASES, ids=[json.dumps(f)[:40] for f, _ in FIELD_CASES])
def test_cli_and_server_agree_on_routing_fields(fields, ok):
    assert cli_accepts(routing_record(**fields)) is ok
    assert server_accepts(RouteRequest, route_body(**fields)) is ok


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, name=st.sampled_from(["input_price", "output_price", "weight", "objective"]))
def test_any_json_value_of_a_routing_field_gets_the_same_verdict_at_both_doors(value, name):
    if value is None:  # JSON null means "not given" for the server's optional fields
        return
    assert cli_accepts(routing_record(**{name: value})) == server_accepts(
        RouteRequest, route_body(**{name: value})
    )


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=6))
def test_candidate_text_gets_the_same_verdict_at_both_doors(text):
    record = {
        "id": "p",
        "scenario": "passage",
        "query": "q",
        "candidates": [{"id": "a", "text": "x"}, {"id": "b", "text": text}],
    }
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return  # lone surrogates: refused by both, by checks of their own (not example fields)
    assert cli_accepts(record) == server_accepts(RerankRequest, {"query": "q", "documents": ["x", text]})
    assert cli_accepts(record) == bool(text.strip())


def test_the_rules_raise_only_field_errors():
    for bad in (10**400, float("inf"), "1", True, None, [], -1):
        with pytest.raises(FieldError):
            price(bad)
    assert objective_or_weight({}) == 1.0 and objective_or_weight({"objective": "cost"}) == 0.2
    with pytest.raises(FieldError, match="objective, weight"):
        objective_or_weight({"objective": "cost", "weight": 0.3})


def test_limits_are_checked_only_when_given():
    record = {
        "id": "p",
        "scenario": "passage",
        "query": "q",
        "candidates": [{"id": f"c{i}", "text": "x" * 9} for i in range(5)],
    }
    example_from_record(record)
    with pytest.raises(DataError, match="5 candidates is over the limit of 4"):
        example_from_record(record, limits=ExampleLimits(max_candidates=4))
    with pytest.raises(DataError, match="9 characters is over the limit of 8"):
        example_from_record(record, limits=ExampleLimits(max_candidate_chars=8))
