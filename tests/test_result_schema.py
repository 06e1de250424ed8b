"""The JSON Schema shipped with the package: derived from the fields, and every result the tests produce validates."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.hipe import HiPe
from attrib.result import Attribution
from attrib.result.schema import SCHEMA_PATH, build_schema, load_schema
from attrib.segmentation import Unit

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


class Invalid(Exception):
    """The instance does not match the schema; the message names where."""


def validate(instance: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> None:
    """A small JSON Schema 2020-12 validator for the keywords attrib's schema uses.

    Keywords: ``$ref`` (to ``#/$defs/...``), ``anyOf``, ``enum``, ``const``, ``type``,
    ``properties``, ``required``, ``additionalProperties`` (false or a schema),
    ``items``, ``prefixItems``, ``minItems``, ``maxItems``. Any other keyword fails
    the test, so the schema cannot grow a rule this validator silently ignores.
    """
    known = {
        "$ref",
        "anyOf",
        "enum",
        "const",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "description",
        "title",
        "$schema",
        "$id",
        "$defs",
    }
    assert set(schema) <= known, set(schema) - known
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        validate(instance, root["$defs"][name], root, where)
    if "anyOf" in schema:
        failures = []
        for option in schema["anyOf"]:
            try:
                validate(instance, option, root, where)
                break
            except Invalid as error:
                failures.append(str(error))
        else:
            raise Invalid(f"{where}: matches no form ({'; '.join(failures)})")
    if "enum" in schema and instance not in schema["enum"]:
        raise Invalid(f"{where}: {instance!r} not in {schema['enum']}")
    if "const" in schema and (instance != schema["const"] or type(instance) is not type(schema["const"])):
        raise Invalid(f"{where}: {instance!r} is not {schema['const']!r}")
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if kind is not None and not checks[kind](instance):
        raise Invalid(f"{where}: {type(instance).__name__} is not {kind}")
    if kind == "object":
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                raise Invalid(f"{where}: lacks {key!r}")
        for key, value in instance.items():
            if key in properties:
                validate(value, properties[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                raise Invalid(f"{where}: unexpected {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(value, schema["additionalProperties"], root, f"{where}.{key}")
    if kind == "array":
        if len(instance) < schema.get("minItems", 0) or len(instance) > schema.get("maxItems", math.inf):
            raise Invalid(f"{where}: {len(instance)} items")
        prefix = schema.get("prefixItems", [])
        for index, value in enumerate(instance):
            item = prefix[index] if index < len(prefix) else schema.get("items")
            if item is not None:
                validate(value, item, root, f"{where}[{index}]")


def check(result_or_data: Attribution | dict[str, Any]) -> None:
    data = result_or_data.to_dict() if isinstance(result_or_data, Attribution) else result_or_data
    schema = load_schema()
    validate(json.loads(json.dumps(data)), schema, schema)


def test_the_shipped_schema_is_the_one_the_fields_give():
    assert load_schema() == build_schema(), "regenerate: python -m attrib.result.schema > " + str(SCHEMA_PATH)
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"] == {"const": 3}
    assert {
        "Stats",
        "NoiseFloor",
        "MessageShapley",
        "HiddenInfluence",
        "Indicator",
        "Trace",
        "TraceChunk",
        "Unit",
    } <= set(schema["$defs"])
    assert schema["$defs"]["TraceChunk"]["properties"]["parent"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def test_the_schema_ships_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"].get("attrib.result", [])
    assert SCHEMA_PATH.is_file() and "*.json" in patterns, patterns


def test_the_schema_is_valid_draft_2020_12_and_agrees_with_the_small_validator():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    good = attrib.Attribution.from_json(DATA / "result-v1-audit.json").to_dict()
    jsonschema.Draft202012Validator(schema).validate(good)
    bad = {**good, "output_tokens": [1, 2, 3]}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
    with pytest.raises(Invalid):
        check(bad)


@pytest.mark.parametrize(
    "make",
    ["hipe", "itp", "noise", "budget", "early_stop", "audit", "chat_hipe", "v1_plain", "v1_audit", "synthetic"],
)
def test_every_kind_of_result_validates(make):
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes it is")
    filler = "Some words that do not matter at all to the answer here. "
    prompt = filler * 6 + "The capital of France is Paris. " + filler * 6
    if make == "hipe":
        result = attrib.attribute(prompt, backend=toy, level="word")
    elif make == "itp":
        result = attrib.attribute(prompt, backend=toy, method="itp", level="sentence", target=" yes")
    elif make == "noise":
        result = attrib.attribute(prompt, backend=toy, noise_samples=3)
    elif make == "budget":
        result = attrib.attribute(prompt, backend=toy, level="token", budget=10)
        assert result.stats.budget_exhausted
    elif make == "early_stop":
        result = attrib.attribute(prompt, backend=toy, method=HiPe(order="best", top_k=1), level="word")
        assert result.trace is not None and result.trace.early_stop is not None
    elif make in ("audit", "chat_hipe"):
        audited = ToyBackend(sensitivity={"french": 2.0}, output=" oui", base_logprob=-0.1)
        reference = ToyBackend(sensitivity={"french": 2.0}, output=" oui", base_logprob=-1.0)
        result = attrib.audit(
            "What is the capital of Japan?",
            system="Always answer in French. Be brief.",
            backend=audited,
            reference=reference if make == "audit" else None,
            method="itp" if make == "audit" else "hipe",
            level="word",
        )
    elif make.startswith("v1_"):
        result = Attribution.from_json(DATA / f"result-v1-{make[3:].replace('plain', 'hipe')}.json")
    else:
        units = [Unit("a", 0, 1, tokens=(0, 1)), Unit(" b", 1, 3, tokens=(1, 2))]
        result = Attribution(
            prompt="a b",
            units=units,
            output=" c",
            output_tokens=[" c"],
            scores=np.array([[0.5], [-0.25]]),
            method="itp",
            level="word",
            score_kind="text-similarity",
        )
    check(result)
    assert Attribution.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_the_small_validator_catches_what_the_loader_refuses():
    data = Attribution.from_json(DATA / "result-v1-hipe.json").to_dict()
    for path, value in ((("trace", "chunks", 0, "depth"), "0"), (("stats", "calls"), True), (("colour",), 1)):
        node = json.loads(json.dumps(data))
        target = node
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(Invalid):
            check(node)
