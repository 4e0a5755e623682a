"""The OpenAPI document: structure, the attrs -> JSON Schema converter, schemathesis."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from avl.console import Console
from avl.errors import InvalidInputError
from avl.web import PERMISSIONS, ApiKeyAuthenticator, Identity, create_app, openapi_spec
from avl.web._jsonschema import SchemaBuilder, decode, encode_value
from avl.web._routes import ROUTES

from .conftest import LiveServer


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen(kw_only=True)
class Inner:
    """An inner value.

    More text that is not in the description.
    """

    n: int = attrs.field(metadata={"minimum": 0, "description": "A count."})


@attrs.frozen(kw_only=True)
class Outer:
    name: str = attrs.field(metadata={"min_length": 1, "example": "x"})
    inner: Inner
    maybe: Inner | None = None
    tags: tuple[str, ...] = ()
    pair: tuple[int, str] = (0, "")
    scores: Mapping[str, float] = attrs.field(factory=dict)
    mode: Literal["a", "b"] = "a"
    color: Color = Color.RED
    items: list[Inner] = attrs.field(factory=list)
    anything: Any = None
    flag: bool = False
    ratio: float | None = None


def test_schema_builder() -> None:
    b = SchemaBuilder()
    assert b.schema(Outer) == {"$ref": "#/components/schemas/Outer"}
    outer = b.components["Outer"]
    assert outer["required"] == ["name", "inner"]
    assert outer["additionalProperties"] is False
    props = outer["properties"]
    assert props["name"] == {"type": "string", "minLength": 1, "examples": ["x"]}
    assert props["inner"] == {"$ref": "#/components/schemas/Inner"}
    assert props["maybe"] == {"anyOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
    }
    assert props["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["mode"] == {"type": "string", "enum": ["a", "b"]}
    assert props["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert props["items"] == {"type": "array", "items": {"$ref": "#/components/schemas/Inner"}}
    assert props["anything"] == {}
    assert props["flag"] == {"type": "boolean"}
    assert props["ratio"] == {"type": ["number", "null"]}
    assert b.components["Inner"] == {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "description": "A count."}},
        "additionalProperties": False,
        "required": ["n"],
        "description": "An inner value.",
    }
    with pytest.raises(InvalidInputError, match="cannot describe type"):
        b.schema(complex)


def test_decode_and_encode() -> None:
    value = decode(
        Outer,
        {
            "name": "n",
            "inner": {"n": 1},
            "pair": [1, "a"],
            "color": "blue",
            "ratio": 2,
            "items": [{"n": 2}],
            "scores": {"a": 1.5},
        },
    )
    assert value == Outer(
        name="n",
        inner=Inner(n=1),
        pair=(1, "a"),
        color=Color.BLUE,
        ratio=2.0,
        items=[Inner(n=2)],
        scores={"a": 1.5},
    )
    assert encode_value(value)["color"] == "blue"
    assert encode_value(value)["pair"] == [1, "a"]
    cases = [
        ({"name": "", "inner": {"n": 1}}, "name: must be at least 1 characters"),
        ({"name": "n", "inner": {"n": -1}}, "inner.n: must be >= 0"),
        ({"name": "n", "inner": {"n": True}}, "inner.n: expected an integer, got boolean"),
        ({"name": "n", "inner": {"n": 1}, "mode": "c"}, "mode: expected one of ['a', 'b']"),
        (
            {"name": "n", "inner": {"n": 1}, "color": "green"},
            "color: expected one of 'red', 'blue'",
        ),
        ({"name": "n", "inner": {"n": 1}, "pair": [1]}, "pair: expected 2 items, got 1"),
        (
            {"name": "n", "inner": {"n": 1}, "items": [{"n": "x"}]},
            "items[0].n: expected an integer",
        ),
        (
            {"name": "n", "inner": {"n": 1}, "ratio": float("nan")},
            "ratio: expected a finite number",
        ),
        ({"name": "n"}, "inner: required"),
    ]
    for data, message in cases:
        with pytest.raises(InvalidInputError) as info:
            decode(Outer, data)
        assert message in str(info.value)


def test_spec_documents_every_route() -> None:
    spec = openapi_spec()
    assert spec["openapi"] == "3.1.0"
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert ops == {(r.method, r.path) for r in ROUTES}
    check = spec["paths"]["/v1/sql/check"]["post"]
    assert check["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CheckRequest"
    }
    assert sorted(check["responses"]) == [
        "200",
        "400",
        "401",
        "403",
        "413",
        "415",
        "422",
        "429",
        "500",
    ]
    assert check["responses"]["429"]["headers"]["Retry-After"]["schema"] == {"type": "string"}
    verdict = spec["components"]["schemas"]["VerdictOut"]
    assert verdict["properties"]["allowed"]["type"] == "boolean"
    assert "allowed" in verdict["required"]
    assert set(spec["components"]["securitySchemes"]) == {"apiKey", "bearer"}
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    # every $ref resolves
    schemas = spec["components"]["schemas"]

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(spec):
        assert ref.removeprefix("#/components/schemas/") in schemas


def test_served_spec_is_the_same(app: Any) -> None:
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://localhost") as tc:
        assert tc.get("/openapi.json").json() == openapi_spec()


KEY = "st-key-0123456789abc"

# Every check schemathesis has, positive and negative data. A schema-valid request
# can still be refused for what it means: SafeQuery refuses the SQL or the database
# rejects it (422), an entry id does not exist (404), a role is not configured (403).
SCHEMATHESIS_CONFIG = """
[checks]
enabled = true

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "403", "404", "422"]

[generation]
mode = "all"
"""


@pytest.fixture(scope="module")
def api_schema() -> Iterator[Any]:
    """The document as served by a live uvicorn on loopback (schemathesis calls it over TCP)."""
    from schemathesis.config import SchemathesisConfig

    console = Console(ratelimit={"rates": "100000/second"})
    auth = ApiKeyAuthenticator.from_keys({KEY: Identity(user="st", permissions=PERMISSIONS)})
    config = SchemathesisConfig.from_str(SCHEMATHESIS_CONFIG)
    try:
        with LiveServer(create_app(console, authenticator=auth)) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)
    finally:
        console.close()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schemathesis(case: Any) -> None:
    """All checks, positive and negative data: no 5xx, every status documented."""
    case.call_and_validate(headers={"x-api-key": KEY})


def test_avl_openapi_command_prints_the_spec_without_a_server() -> None:
    import json
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "avl.cli", "openapi"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == openapi_spec()
