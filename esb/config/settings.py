"""The hub's typed settings and the order of their sources.

Sources, lowest priority first, read by :mod:`esb.config.sources` (the order is written in
``read_sources``) and validated by :class:`Settings`::

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
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from esb.config.cron import check_crontab
from esb.config.durations import Duration
from esb.config.sources import interpolate as interpolate  # the projects' files fill ${VAR} alike
from esb.config.sources import read_sources
from esb.exceptions import ConfigError, mask_url


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
    backlog_grace: Duration = Field(
        default=90.0,
        description=(
            "longest a due timer waits for its reply queues to be read back after a start or a lost broker"
            " (above the broker's visibility_timeout)"
        ),
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


class ConsoleSettings(_Section):
    """The operators' web console (docs/operations.md, "The console"): its own loopback port, login required.

    ``users`` holds one ``name:role:pbkdf2_sha256$iterations$salt$hash`` entry per line (or separated by
    spaces or commas; make one with ``esb console user NAME --role operator``); role ``viewer`` reads,
    ``operator`` also acts. It is a secret: set it from the environment (ESB_CONSOLE__USERS) or a secret
    file (console__users), never a settings file. When empty, the hub makes an ``admin`` operator with a
    random password at each start and writes it with the URL to ``{data_dir}/console.json`` (mode 0600).
    """

    enabled: bool = Field(default=False, description="serve it (config/settings.yaml turns it on: make run)")
    host: Literal["127.0.0.1", "::1", "localhost"] = "127.0.0.1"
    port: int = Field(default=9465, ge=0, le=65535, description="0 picks a free port (see console.json)")
    users: str = Field(default="", description="user entries with password hashes; secret: env/secret file")
    session_key: str = Field(
        default="", description="signs session cookies; secret; empty: random at start (logs everyone out)"
    )
    session_lifetime: Duration = Field(default=28800.0, description="a login lasts this long (8 h)")
    secure_cookies: bool = Field(
        default=False, description="mark cookies Secure: set when a TLS reverse proxy serves the console"
    )
    login_attempts: int = Field(
        default=5, ge=1, description="failed logins per user name or client within login_window, then refused"
    )
    login_window: Duration = Field(default=300.0, description="the window of login_attempts")
    retry_rate: float = Field(default=20.0, gt=0, description="dead letters re-published per second at most")
    retry_max: int = Field(default=500, ge=1, description="dead letters one retry action may take at most")
    figures_ttl: Duration = Field(
        default=5.0, description="the routes' live figures are computed at most this often, shared by all"
    )
    page_size: int = Field(default=50, ge=5, le=500, description="rows per page of every list")
    threads: int = Field(default=4, ge=1, le=32, description="threads serving requests")


class FilesSettings(_Section):
    """Who may read the data files (journal, queues, staging, rejects, replies, outbox, archives).

    ``private`` (default): files 0600 in folders 0700, the hub's account only. ``group``: files 0660 in
    folders 2770, for several accounts of one group sharing a data folder; ``group`` names it.
    """

    mode: Literal["private", "group"] = "private"
    group: str | None = Field(default=None, description="group owning the data files (default: unchanged)")


class TelemetrySettings(_Section):
    """OpenTelemetry tracing (docs/operations.md, "OpenTelemetry"): off by default.

    On, every route run, route step, delivery, process step and batch file is a span, and the W3C
    ``traceparent`` rides queue headers and the HTTP headers of SOAP and REST calls. ``headers`` go with
    every export (a collector's API key): set them from the environment (ESB_TELEMETRY__HEADERS as JSON)
    or a secret file (telemetry__headers), never in a settings file under version control.
    """

    enabled: bool = False
    exporter: Literal["otlp", "console", "none"] = Field(
        default="otlp", description="otlp: OTLP over HTTP/protobuf to ``endpoint``; console: stdout; none"
    )
    endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces", description="the collector's OTLP/HTTP traces URL"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="sent with every export; secret: environment or secret file only"
    )
    service_name: str = Field(default="esb", description="the ``service.name`` resource attribute")
    sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of new traces kept; a sampled parent is always kept"
    )
    timeout: Duration = Field(default=10.0, description="how long one export may take")


class ResyncSettings(_Section):
    """A full resync of one sync from the source's full extract (docs/sync.md, "Full resync")."""

    extract: str = Field(
        description="the batch endpoint (systems.yaml) whose files are the source's full extract: its layout "
        "and encoding read them; a scheduled run takes the newest file in its local folder"
    )
    transform: str = Field(description="the mapping of one extract record to canonical (transforms/)")
    delete_missing: bool = Field(
        default=False, description="send a delete for every key the target holds that the extract lacks"
    )
    chunk: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description="records judged (claimed, sent, checkpointed) together; a chunk also closes every "
        "100 x chunk records read",
    )
    schedule: str | None = Field(
        default=None,
        description="cron (5 fields) for a scheduled run by the leading hub process; none: on demand",
    )


    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_crontab(value)
            except ValueError as exc:
                raise ValueError(f"schedule {value!r} is not a 5-field cron expression: {exc}") from None
        return value


class ReconcileSettings(_Section):
    """Reconciliation of one sync against the target's extract (docs/sync.md, "Reconciliation")."""

    extract: str = Field(
        description="the batch endpoint (systems.yaml) whose layout reads the target's extract"
    )
    transform: str = Field(description="the mapping of one target extract record to canonical (transforms/)")
    fields: list[str] | None = Field(
        default=None,
        description="compare only these of the sync's fields (those the target's extract holds); "
        "default: all of the sync's fields",
    )


class SyncSettings(_Section):
    """Full resyncs and reconciliations, per sync name (the ``sync`` step's name)."""

    resync: dict[str, ResyncSettings] = Field(default_factory=dict)
    reconcile: dict[str, ReconcileSettings] = Field(default_factory=dict)


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
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

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
        data["telemetry"]["headers"] = {name: "***" for name in data["telemetry"]["headers"]}
        for secret in ("users", "session_key"):
            if data["console"][secret]:
                data["console"][secret] = "***"
        return data


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
    data = read_sources(Settings, [(p, str(p.relative_to(project_dir))) for p in files], environ)
    try:
        settings = Settings.model_validate({**data, "env": env})
    except ValidationError as exc:
        findings = [f"settings: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid settings", findings=findings) from None
    return settings.resolve_paths(project_dir)
