"""The hub's typed settings and the order of their sources.

Sources, lowest priority first, read through pydantic-settings (``_LoadedSettings``; the order is written
in its ``settings_customise_sources``)::

    defaults in this module
    config/settings.yaml                      embedded defaults: one machine, no servers
    config/settings.<env>.yaml                e.g. settings.production.yaml (ESB_ENV or --env)
    environment variables                     ESB_JOURNAL__URL=..., nested with "__"
    secret files                              $ESB_SECRETS_DIR/<name>, e.g. journal__url

YAML values may say ``${VAR}`` or ``${VAR:-default}``; secrets only ever come from the environment or
secret files, and ``Settings.masked()`` is what gets logged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from esb.config.durations import Duration
from esb.config.yamlpos import load_yaml
from esb.exceptions import ConfigError, mask_url

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerSettings(_Section):
    """The queue broker: the embedded SQLite transport by default, RabbitMQ in production."""

    url: str = "sqlite:///{data_dir}/queues.db"
    transport_options: dict[str, Any] = Field(default_factory=dict)
    prefetch: int = Field(default=100, ge=1, le=10_000)
    heartbeat: int = Field(default=30, ge=0)
    connect_timeout: Duration = 10.0
    max_retries: int = Field(default=3, ge=0, description="connection attempts before a TransportError")
    reconnect_timeout: Duration = Field(
        default=60.0,
        description="how long a sink keeps reconnecting (with backoff) to publish after the broker went away",
    )


class RetentionSettings(_Section):
    """How long the journal keeps finished messages (docs/journal.md "Retention"); dead letters stay until
    handled. Nothing is pruned unless a number of days is set."""

    delivered_days: float | None = Field(
        default=None, gt=0, description="days a delivered (or purged) message is kept; empty: for ever"
    )
    filtered_days: float | None = Field(
        default=None, gt=0, description="days a filtered message is kept; empty: for ever"
    )
    archive: bool = Field(
        default=True, description="write pruned messages to {data_dir}/archive/journal/<day>.jsonl.gz first"
    )
    every: Duration = Field(
        default=3600.0, description="how often the running hub prunes (the leader only); 0: never"
    )
    batch: int = Field(default=2000, ge=1, description="messages per prune transaction")


class JournalSettings(_Section):
    """The message journal (SQLAlchemy URL): SQLite in WAL mode by default, PostgreSQL in production."""

    url: str = "sqlite:///{data_dir}/journal.db"
    keep_bodies: bool = True
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


class LimitsSettings(_Section):
    """Limits that protect the hub from bad input."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_deliveries: int = Field(
        default=10, ge=1, description="a message handed out this many times (crash loops) is dead-lettered"
    )


class LoggingSettings(_Section):
    """Log level and renderer (JSON lines by default, console for people)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class RuntimeSettings(_Section):
    """How route workers poll and stop; how the hub follows operators' commands and edited files."""

    poll_timeout: Duration = 0.5
    shutdown_grace: Duration = 10.0
    batch_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="deliveries a worker takes together when its source has them ready (1: one at a time)",
    )
    control_interval: Duration = Field(
        default=1.0, description="how often the hub reads route suspend/resume requests (esb route)"
    )
    watch_project: bool = Field(
        default=True, description="reload routes.yaml, transforms and systems when they change (after lint)"
    )
    watch_interval: Duration = Field(default=2.0, description="how often edited project files are looked for")


class ProcessesSettings(_Section):
    """How the hub runs the project's processes (processes/*.yaml; docs/processes.md)."""

    runners: int = Field(default=2, ge=1, le=32, description="runner threads advancing due instances")
    poll: Duration = Field(default=0.5, description="how long a runner sleeps when no instance is due")
    lease: Duration = Field(
        default=30.0, description="how long a runner holds an instance before another may take it over"
    )
    dead_letter: str | None = Field(
        default=None,
        description="endpoint for trigger and reply messages no instance takes (journaled either way)",
    )


class MonitoringSettings(_Section):
    """The running hub's loopback HTTP listener: /health/live, /health/ready, Prometheus /metrics.

    Every path needs ``Authorization: Bearer <token>``. The token comes from ``token`` (set it from the
    environment, ESB_MONITORING__TOKEN, or a secret file, monitoring__token); when empty the hub makes
    one at start. The listening address and token are written to ``{data_dir}/monitoring.json`` (mode
    0600) for ``esb health``.
    """

    enabled: bool = True
    host: Literal["127.0.0.1", "::1", "localhost"] = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535, description="0 picks a free port (see monitoring.json)")
    token: str = Field(default="", description="bearer token; secret: environment or secret file only")


class FilesSettings(_Section):
    """Who may read the data files (journal, queues, staging, rejects, replies, outbox, archives).

    ``private`` (default): files 0600 in folders 0700, the hub's account only. ``group``: files 0660 in
    folders 2770, for several accounts of one group sharing a data folder; ``group`` names it.
    """

    mode: Literal["private", "group"] = "private"
    group: str | None = Field(default=None, description="group owning the data files (default: unchanged)")


class Settings(_Section):
    """Everything the hub needs that is not a route: where queues and journal live, limits, logging."""

    env: str = "default"
    data_dir: Path = Path("var")
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    processes: ProcessesSettings = Field(default_factory=ProcessesSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)

    def resolve_paths(self, project_dir: Path) -> Settings:
        """Return a copy with ``data_dir`` absolute and ``{data_dir}`` filled into the URLs."""
        data_dir = self.data_dir if self.data_dir.is_absolute() else (project_dir / self.data_dir)
        data = self.model_dump()
        data["data_dir"] = data_dir
        for section in ("broker", "journal"):
            data[section]["url"] = data[section]["url"].replace("{data_dir}", str(data_dir))
        return Settings.model_validate(data)

    def masked(self) -> dict[str, Any]:
        """Return the settings as a dict fit for logs: passwords in URLs masked."""
        data = self.model_dump(mode="json")
        for section in ("broker", "journal"):
            data[section]["url"] = mask_url(data[section]["url"])
        if data["monitoring"]["token"]:
            data["monitoring"]["token"] = "***"  # noqa: S105 - the mask, not a password
        return data


def interpolate(value: Any, where: str, environ: dict[str, str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``value`` from ``environ``."""
    if isinstance(value, dict):
        return {k: interpolate(v, where, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, where, environ) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match["name"], match["default"]
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: ${{{name}}} is not set in the environment (set it or give a default)")

    return _ENV_REF.sub(repl, value)


class _YamlFile(PydanticBaseSettingsSource):
    """One settings YAML file as a pydantic-settings source: loaded with line positions, ``${VAR}`` filled
    from the load's environment."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, display: str, environ: dict[str, str]):
        super().__init__(settings_cls)
        self.path, self.display, self.environ = path, display, environ

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Unused: the whole file is returned by ``__call__``."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The file's settings (empty when the file does not exist)."""
        if not self.path.exists():
            return {}
        doc = load_yaml(self.path, display=self.display)
        if doc.data is not None and not isinstance(doc.data, dict):
            raise ConfigError(f"{self.display}:1: settings must be a mapping")
        return dict(interpolate(doc.data or {}, self.display, self.environ))


class _Environment(EnvSettingsSource):
    """``ESB_<SECTION>__<KEY>`` variables read from the load's environment (``os.environ`` unless a caller,
    a test or ``esb demo``, gives its own)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # pydantic-settings reads os.environ here; the mapping is the only thing this class changes
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


@dataclass(frozen=True)
class _Load:
    """What one ``load_settings`` call reads: the settings files and the environment."""

    files: tuple[tuple[Path, str], ...]
    environ: dict[str, str]


_LOAD: ContextVar[_Load] = ContextVar("esb_settings_load")


class _LoadedSettings(BaseSettings, Settings):
    """:class:`Settings` read through pydantic-settings from the sources of the module docstring."""

    model_config = SettingsConfigDict(
        extra="forbid",
        env_prefix="ESB_",
        env_nested_delimiter="__",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest priority first: secret files, environment, settings.<env>.yaml, settings.yaml."""
        load = _LOAD.get()
        sources: list[PydanticBaseSettingsSource] = []
        secrets = load.environ.get("ESB_SECRETS_DIR")
        if secrets:
            plain = SecretsSettingsSource(settings_cls, secrets_dir=secrets, case_sensitive=False)
            sources.append(
                NestedSecretsSettingsSource(plain, secrets_prefix="", secrets_nested_delimiter="__")
            )
        sources.append(_Environment(settings_cls, load.environ))
        for path, display in load.files[::-1]:
            sources.append(_YamlFile(settings_cls, path, display, load.environ))
        return tuple(sources)


def load_settings(
    project_dir: Path, env: str | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Load the settings of the project at ``project_dir`` from all sources, in the documented order."""
    environ = dict(os.environ if environ is None else environ)
    env = env or environ.get("ESB_ENV") or "default"
    files = [project_dir / "config" / "settings.yaml"]
    if env != "default":
        env_file = project_dir / "config" / f"settings.{env}.yaml"
        if not env_file.exists():
            raise ConfigError(f"config/settings.{env}.yaml: not found (ESB_ENV / --env is {env!r})")
        files.append(env_file)
    token = _LOAD.set(_Load(tuple((p, str(p.relative_to(project_dir))) for p in files), environ))
    try:
        loaded = _LoadedSettings()
        settings = Settings.model_validate({**loaded.model_dump(), "env": env})
    except ValidationError as exc:
        findings = [f"settings: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid settings", findings=findings) from None
    finally:
        _LOAD.reset(token)
    return settings.resolve_paths(project_dir)
