"""Differential: esb.config.sources reads the settings exactly as pydantic-settings read them before.

The oracle is the loader esb used until it was replaced (pydantic-settings' ``EnvSettingsSource`` and
``NestedSecretsSettingsSource`` with our YAML files as sources), kept here only to compare: for every case
both give the same ``Settings``, or both refuse them with the same findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from esb.config.settings import Settings, load_settings
from esb.config.sources import yaml_file
from esb.exceptions import ConfigError

_LOAD: ContextVar[tuple[list[tuple[Path, str]], dict[str, str]]] = ContextVar("oracle_load")


class _YamlFile(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path, display: str, environ: dict[str, str]):
        super().__init__(settings_cls)
        self.path, self.display, self.environ = path, display, environ

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return yaml_file(self.path, self.display, self.environ)


class _Environment(EnvSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class _Oracle(BaseSettings, Settings):
    model_config = SettingsConfigDict(extra="forbid", env_prefix="ESB_", env_nested_delimiter="__")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], **sources: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files, environ = _LOAD.get()
        sources: list[PydanticBaseSettingsSource] = []
        secrets = environ.get("ESB_SECRETS_DIR")
        if secrets:
            plain = SecretsSettingsSource(settings_cls, secrets_dir=secrets, case_sensitive=False)
            sources.append(
                NestedSecretsSettingsSource(plain, secrets_prefix="", secrets_nested_delimiter="__")
            )
        sources.append(_Environment(settings_cls, environ))
        sources.extend(_YamlFile(settings_cls, path, display, environ) for path, display in files[::-1])
        return tuple(sources)


def oracle(project: Path, env: str | None, environ: dict[str, str]) -> Settings:
    """The settings as the pydantic-settings loader read them."""
    env = env or environ.get("ESB_ENV") or "default"
    files = [project / "config" / "settings.yaml"]
    if env != "default":
        files.append(project / "config" / f"settings.{env}.yaml")
    token = _LOAD.set(([(p, str(p.relative_to(project))) for p in files], environ))
    try:
        loaded = _Oracle()
        settings = Settings.model_validate({**loaded.model_dump(), "env": env})
    except ValidationError as exc:
        findings = [f"settings: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid settings", findings=findings) from None
    finally:
        _LOAD.reset(token)
    return settings.resolve_paths(project)


def outcome(load: Any, project: Path, env: str | None, environ: dict[str, str]) -> Any:
    """The settings as a dict, or the error's message and findings."""
    try:
        return load(project, env, environ).model_dump()
    except ConfigError as exc:
        return ("error", str(exc), exc.findings)
    except SettingsError:
        return "pydantic-settings refused it"


BASE = "limits: {max_body_bytes: 10, max_deliveries: 3}\nbroker: {prefetch: 7, transport_options: {a: 1}}\n"
SYNC = (
    "sync:\n  resync:\n    s1: {extract: a.b, transform: c/d, schedule: '0 3 * * 0'}\n"
    "  reconcile:\n    r1: {extract: a.b, transform: c/d, fields: [x, y]}\n"
)

CASES = [
    pytest.param({}, {}, None, id="nothing"),
    pytest.param({"settings.yaml": BASE}, {}, None, id="base-file"),
    pytest.param(
        {"settings.yaml": BASE, "settings.production.yaml": "limits: {max_body_bytes: 20}\n"},
        {"ESB_LIMITS__MAX_DELIVERIES": "7"},
        "production",
        id="env-file-then-environment",
    ),
    pytest.param(
        {}, {"ESB_SOAP_CRM_PASSWORD": "x", "ESB_PROJECT": "/x", "ESB_ENV": "s"}, "default", id="not-settings"
    ),
    pytest.param(
        {"settings.yaml": BASE},
        {"ESB_BROKER__TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3"},
        None,
        id="dict-key-keeps-siblings",
    ),
    pytest.param(
        {"settings.yaml": BASE}, {"ESB_BROKER__TRANSPORT_OPTIONS": '{"b": 2}'}, None, id="dict-json"
    ),
    pytest.param({}, {"ESB_BROKER__TRANSPORT_OPTIONS": "not json"}, None, id="dict-bad-json"),
    pytest.param({}, {"ESB_JOURNAL__NOPE": "1"}, None, id="unknown-nested"),
    pytest.param(
        {}, {"esb_journal__URL": "sqlite:///x.db", "ESB_Limits__Max_Deliveries": "5"}, None, id="case"
    ),
    pytest.param(
        {},
        {"ESB_JOURNAL": '{"URL": "sqlite:///j.db", "Retention": {"Delivered_Days": 3}}'},
        None,
        id="section-json-any-case",
    ),
    pytest.param(
        {},
        {"ESB_JOURNAL": '{"url": "sqlite:///j.db"}', "ESB_JOURNAL__KEEP_BODIES": "false"},
        None,
        id="section-json-and-nested",
    ),
    pytest.param({}, {"ESB_JOURNAL": "oops"}, None, id="section-bad-json"),
    pytest.param({}, {"ESB_JOURNAL__RETENTION": '{"delivered_days": 2}'}, None, id="nested-model-json"),
    pytest.param({}, {"ESB_JOURNAL__RETENTION__DELIVERED_DAYS": "2.5"}, None, id="nested-model-key"),
    pytest.param({}, {"ESB_JOURNAL__RETENTION__DELIVERED_DAYS": ""}, None, id="empty-value"),
    pytest.param({}, {"ESB_LIMITS__MAX_DELIVERIES": "zero"}, None, id="bad-int"),
    pytest.param({}, {"ESB_DATA_DIR": "/srv/esb", "ESB_ENV": "default"}, None, id="top-level-scalars"),
    pytest.param({}, {"ESB_TELEMETRY__HEADERS": '{"api-key": "k"}'}, None, id="headers-json"),
    pytest.param({}, {"ESB_TELEMETRY__HEADERS__API_KEY": "k"}, None, id="headers-key"),
    pytest.param(
        {"settings.yaml": SYNC}, {"ESB_SYNC__RESYNC__S1__SCHEDULE": "0 4 * * 1"}, None, id="dict-of-models"
    ),
    pytest.param(
        {"settings.yaml": SYNC},
        {"ESB_SYNC__RESYNC__S2": '{"extract": "e.f", "transform": "g/h"}'},
        None,
        id="dict-of-models-json",
    ),
    pytest.param(
        {"settings.yaml": SYNC}, {"ESB_SYNC__RECONCILE__R1__FIELDS": '["z"]'}, None, id="optional-list"
    ),
    pytest.param(
        {"settings.yaml": SYNC}, {"ESB_SYNC__RECONCILE__R1__FIELDS": "z"}, None, id="optional-list-text"
    ),
    pytest.param({"settings.yaml": SYNC}, {"ESB_SYNC__RESYNC__S1__SCHEDULE": "never"}, None, id="bad-cron"),
    pytest.param(
        {"settings.yaml": "limits: {max_body_bytes: 10}\n"},
        {"ESB_LIMITS": '{"max_deliveries": 4}'},
        None,
        id="section-json-over-file",
    ),
    pytest.param({"settings.yaml": "broker: {url: '${NOPE:-memory://}'}\n"}, {}, None, id="var-default"),
    pytest.param({"settings.yaml": "broker: {url: '${NOPE}'}\n"}, {}, None, id="var-missing"),
    pytest.param({"settings.yaml": "broker: {url: '${B}'}\n"}, {"B": "pyamqp://h"}, None, id="var-set"),
    pytest.param({"settings.yaml": "jornal: {url: x}\n"}, {}, None, id="unknown-key"),
    pytest.param({"settings.yaml": "- a\n"}, {}, None, id="not-a-mapping"),
    pytest.param(
        {"settings.yaml": "files: {mode: shared}\n"}, {"ESB_FILES__GROUP": "esb"}, None, id="bad-literal"
    ),
    pytest.param({}, {"ESB_MONITORING__HOST": "0.0.0.0"}, None, id="bad-host"),
    pytest.param(
        {}, {"ESB_RUNTIME__POLL_TIMEOUT": "250ms", "ESB_CONSOLE__ENABLED": "yes"}, None, id="durations"
    ),
]


def _write(project: Path, files: dict[str, str]) -> None:
    (project / "config").mkdir()
    for name, text in files.items():
        (project / "config" / name).write_text(text)


@pytest.mark.parametrize(("files", "environ", "env"), CASES)
def test_sources_read_as_pydantic_settings_did(
    tmp_path: Path, files: dict[str, str], environ: dict[str, str], env: str | None
) -> None:
    """Files and environment give the same settings, or the same findings, as the pydantic-settings loader."""
    _write(tmp_path, files)
    expected = outcome(oracle, tmp_path, env, environ)
    if expected == "pydantic-settings refused it":
        # bad JSON was pydantic-settings' own SettingsError (a traceback): now a ConfigError naming it
        with pytest.raises(ConfigError, match="not valid JSON"):
            load_settings(tmp_path, env, environ)
        return
    assert outcome(load_settings, tmp_path, env, environ) == expected


SECRETS = [
    pytest.param({"journal__url": "postgresql+psycopg://esb:s3cret@127.0.0.1/esb\n"}, id="nested"),
    pytest.param({"JOURNAL__URL": "sqlite:///s.db", "console__users": "a:viewer:x"}, id="upper-case-name"),
    pytest.param({"telemetry__headers": '{"k": "v"}', "monitoring__token": " t "}, id="json-and-strip"),
    pytest.param({"journal": '{"keep_bodies": false}'}, id="section-json"),
    pytest.param({".hidden": "x", "journal__nope": "1"}, id="hidden-and-unknown"),
]


@pytest.mark.parametrize("secrets", SECRETS)
def test_secret_files_read_as_pydantic_settings_did(tmp_path: Path, secrets: dict[str, str]) -> None:
    """Secret files beat the environment and are read (names in any case, JSON, stripped) as before."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name, text in secrets.items():
        (folder / name).write_text(text)
    (folder / "sub").mkdir()
    (folder / "sub" / "journal__url").write_text("sqlite:///ignored.db")
    _write(tmp_path, {"settings.yaml": BASE})
    environ = {"ESB_SECRETS_DIR": str(folder), "ESB_JOURNAL__URL": "sqlite:///env.db"}
    assert outcome(load_settings, tmp_path, None, environ) == outcome(oracle, tmp_path, None, environ)


def test_missing_secrets_folder_warns_as_before(tmp_path: Path) -> None:
    """A secrets folder that does not exist is a warning, and the other sources still count."""
    environ = {"ESB_SECRETS_DIR": str(tmp_path / "none"), "ESB_LIMITS__MAX_DELIVERIES": "4"}
    with pytest.warns(UserWarning, match="does not exist"):
        ours = outcome(load_settings, tmp_path, None, environ)
    with pytest.warns(UserWarning, match="does not exist"):
        assert ours == outcome(oracle, tmp_path, None, environ)
