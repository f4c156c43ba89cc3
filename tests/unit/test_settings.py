"""Settings: the order of sources, ${VAR} interpolation, secret files, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from esb.config.settings import load_settings
from esb.exceptions import ConfigError


def write(project: Path, name: str, text: str) -> None:
    """Write config/<name>."""
    (project / "config").mkdir(exist_ok=True)
    (project / "config" / name).write_text(text)


def test_defaults_fill_data_dir_into_urls(tmp_path: Path) -> None:
    """With no files, queues and journal are SQLite files under <project>/var."""
    settings = load_settings(tmp_path, environ={})
    assert settings.journal.url == f"sqlite:///{tmp_path}/var/journal.db"
    assert settings.broker.url == f"sqlite:///{tmp_path}/var/queues.db"


def test_env_file_overrides_base_and_environment_overrides_both(tmp_path: Path) -> None:
    """settings.<env>.yaml beats settings.yaml, and ESB_* variables beat both."""
    write(tmp_path, "settings.yaml", "limits: {max_body_bytes: 10, max_deliveries: 3}\n")
    write(tmp_path, "settings.production.yaml", "limits: {max_body_bytes: 20}\n")
    settings = load_settings(tmp_path, "production", environ={"ESB_LIMITS__MAX_DELIVERIES": "7"})
    assert (settings.limits.max_body_bytes, settings.limits.max_deliveries) == (20, 7)


def test_secret_file_beats_environment(tmp_path: Path) -> None:
    """A secret file in $ESB_SECRETS_DIR is the last word (journal__url)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "journal__url").write_text("postgresql+psycopg://esb:s3cret@127.0.0.1/esb\n")
    settings = load_settings(
        tmp_path, environ={"ESB_SECRETS_DIR": str(secrets), "ESB_JOURNAL__URL": "sqlite://"}
    )
    assert settings.journal.url == "postgresql+psycopg://esb:s3cret@127.0.0.1/esb"
    assert "s3cret" not in str(settings.masked())


def test_variable_reference_needs_the_variable_or_a_default(tmp_path: Path) -> None:
    """${VAR} without a value and without a default is a ConfigError naming the file."""
    write(tmp_path, "settings.yaml", "broker: {url: '${NOPE}'}\n")
    with pytest.raises(ConfigError, match=r"config/settings.yaml: \$\{NOPE\}"):
        load_settings(tmp_path, environ={})
    write(tmp_path, "settings.yaml", "broker: {url: '${NOPE:-memory://}'}\n")
    assert load_settings(tmp_path, environ={}).broker.url == "memory://"


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    """A misspelt settings key is an error, not silently ignored."""
    write(tmp_path, "settings.yaml", "jornal: {url: x}\n")
    with pytest.raises(ConfigError, match="jornal"):
        load_settings(tmp_path, environ={})


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    """Asking for an environment without its settings file fails clearly."""
    with pytest.raises(ConfigError, match=r"settings\.staging\.yaml"):
        load_settings(tmp_path, "staging", environ={})


def test_other_esb_variables_are_not_settings(tmp_path: Path) -> None:
    """ESB_* variables that name no settings section (credentials, ESB_ENV) are ignored, not refused."""
    settings = load_settings(
        tmp_path, environ={"ESB_SOAP_CRM_PASSWORD": "x", "ESB_LIMITS__MAX_DELIVERIES": "4"}
    )
    assert settings.limits.max_deliveries == 4


def test_nested_values_keep_their_yaml_siblings(tmp_path: Path) -> None:
    """An environment variable sets one nested key; the YAML file's other keys of that section stay."""
    write(tmp_path, "settings.yaml", "broker: {prefetch: 7, transport_options: {a: 1}}\n")
    settings = load_settings(tmp_path, environ={"ESB_BROKER__TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3"})
    assert settings.broker.prefetch == 7
    assert settings.broker.transport_options == {"a": 1, "visibility_timeout": "3"}


def test_unknown_nested_environment_key_is_refused(tmp_path: Path) -> None:
    """ESB_JOURNAL__NOPE is a typo of a real section: a finding, not a silent no-op."""
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={"ESB_JOURNAL__NOPE": "1"})
    assert any("journal.nope" in f for f in caught.value.findings)


def test_the_environment_name_is_the_one_whose_files_were_read(tmp_path: Path) -> None:
    """--env production with ESB_ENV=staging in the environment reads and reports production."""
    write(tmp_path, "settings.production.yaml", "limits: {max_body_bytes: 20}\n")
    settings = load_settings(tmp_path, "production", environ={"ESB_ENV": "staging"})
    assert (settings.env, settings.limits.max_body_bytes) == ("production", 20)
