"""The JSON Schema: valid draft 2020-12, documented for editors, strict, and what ships."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from runner.cli import main
from runner.pipeline.schema import load_schema, schema_text

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "schemas" / "pipeline.schema.json"


def objects(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema that declares properties, with a readable location."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from objects(value, f"{where}/{i}")


def test_schema_is_valid_draft_2020_12_with_an_id() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]


def test_every_property_has_a_description_and_objects_are_closed() -> None:
    undocumented, open_objects = [], []
    for where, node in objects(load_schema()):
        if node.get("additionalProperties") is not False:
            open_objects.append(where)
        undocumented += [f"{where}/{name}" for name, sub in node["properties"].items()
                         if not sub.get("description")]
    assert (undocumented, open_objects) == ([], [])


@pytest.mark.parametrize(("path", "values"), [
    ("character/type", ["defined_character", "character_variants", "object_variants",
                        "multi_object_set", "icons", "stylized_scene", "other"]),
    ("character/medium", ["photography", "illustration"]),
    ("training/version", ["fibo", "light", "max"]),
    ("training/mode", ["fully_automated", "expert"]),
    ("generation/defaults/aspect_ratio", ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4",
                                          "9:16", "16:9"]),
], ids=["ip-type", "medium", "version", "mode", "aspect-ratio"])
def test_enums_follow_the_api_contract(path: str, values: list[str]) -> None:
    node = load_schema()
    for part in path.split("/"):
        node = node["properties"][part]
    assert node["enum"] == values


def test_schema_command_prints_the_shipped_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(SCHEMA_FILE.read_text()) == load_schema()
    assert result.stdout.strip() == schema_text().strip()


@pytest.mark.parametrize("example", sorted((REPO / "pipelines").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_examples_satisfy_the_schema_alone(example: Path) -> None:
    errors = list(Draft202012Validator(load_schema()).iter_errors(yaml.safe_load(
        example.read_text())))
    assert errors == []
