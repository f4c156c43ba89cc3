"""`esb schema systems` and the reference: every adapter's endpoint options, from the adapters' models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from esb.cli.main import cli
from esb.config.reference import generate
from esb.config.systems import EndpointConfig
from esb.config.walk import nested_models
from esb.registry import ADAPTERS, endpoint_models

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator for the schema `esb schema systems` prints."""
    result = CliRunner().invoke(cli, ["schema", "systems"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def systems() -> dict[str, Any]:
    """This project's config/systems.yaml, as written (before ${VAR} interpolation)."""
    return dict(yaml.safe_load((ROOT / "config" / "systems.yaml").read_text(encoding="utf-8")))


def endpoint(systems: dict[str, Any], adapter: str) -> dict[str, Any]:
    """Return the first endpoint of ``systems`` served by ``adapter``."""
    return next(
        e for s in systems["systems"].values() for e in s["endpoints"].values() if e["adapter"] == adapter
    )


def test_projects_systems_file_validates(validator: jsonschema.Draft202012Validator, systems: Any) -> None:
    """config/systems.yaml, ${VAR} values included, is valid against the schema."""
    validator.validate(systems)


def test_schema_offers_every_registered_adapter(validator: jsonschema.Draft202012Validator) -> None:
    """The endpoint union is discriminated on `adapter` and names every adapter of the registry."""
    union = validator.schema["$defs"]["SystemConfig"]["properties"]["endpoints"]["additionalProperties"]
    assert union["discriminator"]["propertyName"] == "adapter"
    assert sorted(union["discriminator"]["mapping"]) == sorted(ADAPTERS)


@pytest.mark.parametrize(
    ("adapter", "where", "typo"),
    [
        pytest.param("queue", (), {"queu": "x"}, id="queue-top-level"),
        pytest.param("soap", ("listen",), {"thread": 8}, id="soap-listen"),
        pytest.param("batch", ("remote",), {"pasive": True}, id="batch-remote"),
        pytest.param("batch", ("inbound", "poll"), {"intervall": "5s"}, id="batch-inbound-poll"),
    ],
)
def test_typod_option_is_refused(
    validator: jsonschema.Draft202012Validator, systems: Any, adapter: str, where: tuple[str, ...], typo: Any
) -> None:
    """A misspelt option, at the top of an endpoint or in a nested section, fails validation."""
    bad = copy.deepcopy(systems)
    node = endpoint(bad, adapter)
    for key in where:
        node = node[key]
    node.update(typo)
    assert list(validator.iter_errors(bad))


def test_unknown_adapter_and_missing_adapter_are_refused(
    validator: jsonschema.Draft202012Validator, systems: Any
) -> None:
    """An endpoint must name a registered adapter."""
    for change in ({"adapter": "qeueu"}, {"adapter": None}):
        bad = copy.deepcopy(systems)
        target = endpoint(bad, "queue")
        target.update(change)
        if change["adapter"] is None:
            del target["adapter"]
        assert list(validator.iter_errors(bad))


def test_wrong_type_is_refused_but_interpolation_is_not(
    validator: jsonschema.Draft202012Validator, systems: Any
) -> None:
    """A number option takes a number or a ${VAR} string, nothing else."""
    good = copy.deepcopy(systems)
    endpoint(good, "queue")["delivery_limit"] = "${ESB_DELIVERY_LIMIT:-10}"
    validator.validate(good)
    endpoint(good, "queue")["delivery_limit"] = "ten"
    assert list(validator.iter_errors(good))


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_every_adapter_option_is_described_in_the_reference(adapter: str) -> None:
    """Each option of the adapter's endpoint model, nested sections included, has a row with a description."""
    text = generate()
    assert f"## config/systems.yaml: `adapter: {adapter}`" in text
    section = text.split(f"`adapter: {adapter}`", 1)[1].split("\n## ", 1)[0]
    for model in nested_models(endpoint_models()[adapter], into_steps=False):
        assert f"### {model.__name__}\n" in section
        for name, field in model.model_fields.items():
            if name in EndpointConfig.model_fields:
                continue  # the common options' table, checked below
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f"| `{field.alias or name}` |" in section.split(f"### {model.__name__}\n", 1)[1]


def test_common_endpoint_options_are_described() -> None:
    """Every option every endpoint has carries a description."""
    assert all(field.description for field in EndpointConfig.model_fields.values())
