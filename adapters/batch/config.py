"""The options of a batch endpoint (``adapter: batch`` in ``config/systems.yaml``).

One endpoint is one remote folder: an inbound endpoint (used as a route's ``from``) polls it for files,
an outbound endpoint (a route's ``to``) aggregates messages into files and uploads them there. Secrets
never appear here: ``password_file`` and ``key_file`` name secret files.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from esb.config.durations import Duration
from esb.config.systems import EndpointConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RemoteConfig(_Section):
    """Where the files are: an SFTP, FTP or FTPS server, or a local folder (``protocol: local``)."""

    protocol: Literal["sftp", "ftp", "ftps", "local"] = Field(
        description="how the folder is reached; local: a folder on this machine"
    )
    host: str = Field(default="127.0.0.1", description="server host (not used by local)")
    port: int | None = Field(default=None, ge=1, le=65535, description="default 22 (sftp) or 21 (ftp/ftps)")
    username: str | None = Field(default=None, description="login name on the server")
    password_file: Path | None = Field(default=None, description="secret file holding the password")
    key_file: Path | None = Field(default=None, description="SFTP private key (secret file)")
    known_hosts: Path | None = Field(
        default=None, description="SFTP: the known_hosts file the host key must be in"
    )
    ca_file: Path | None = Field(
        default=None, description="FTPS: CA bundle the server certificate must chain to"
    )
    path: str = Field(default=".", description="the remote folder (or local folder for protocol: local)")
    name_encoding: str = Field(default="utf-8", description="encoding of file names on the server (gbk...)")
    timeout: Duration = Field(default=30.0, description="connect, banner, auth and socket timeout")
    keepalive: Duration = Field(default=30.0, description="SSH keepalive interval")
    passive: bool = Field(default=True, description="FTP/FTPS passive mode")

    @model_validator(mode="after")
    def _needs(self) -> RemoteConfig:
        if self.protocol == "sftp" and self.known_hosts is None:
            raise ValueError("sftp needs known_hosts (host keys are always checked, never added)")
        if self.protocol == "sftp" and not (self.password_file or self.key_file):
            raise ValueError("sftp needs key_file or password_file")
        return self

    def display(self) -> str:
        """The endpoint as shown in errors and logs (never a password)."""
        if self.protocol == "local":
            return f"local:{self.path}"
        user = f"{self.username}@" if self.username else ""
        return f"{self.protocol}://{user}{self.host}:{self.port or ''}/{self.path.lstrip('/')}"


class CompleteConfig(_Section):
    """When a file is complete: a done/trigger file beside it, stable size and mtime, or a minimum age."""

    mode: Literal["done_file", "stable", "min_age"] = Field(
        default="done_file", description="which test of completeness applies (its option below)"
    )
    done_suffix: str = Field(default=".ok", description="done_file: X is complete when X<suffix> exists")
    stable_checks: int = Field(default=2, ge=2, description="stable: polls with the same size and mtime")
    min_age: Duration = Field(default=60.0, description="min_age: seconds since the last modification")


class ScheduleConfig(_Section):
    """When a job runs: every ``interval``, or on a ``cron`` expression (``0 2 * * *``), in ``timezone``."""

    interval: Duration | None = Field(default=None, description="run every this long (or give cron)")
    cron: str | None = Field(
        default=None, description="5-field cron expression: minute hour day month weekday (or give interval)"
    )
    timezone: str = Field(default="Asia/Shanghai", description="time zone the cron expression is read in")
    misfire_grace_time: Duration = Field(default=3600.0, description="a late run still runs within this")

    @model_validator(mode="after")
    def _one(self) -> ScheduleConfig:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("give exactly one of interval or cron")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} must have 5 fields (minute hour day month weekday)")
        return self


class ReplyConfig(_Section):
    """The reconciliation reply file sent back after a file is processed."""

    enabled: bool = Field(default=False, description="upload a reply file for each processed file")
    dir: str = Field(default="reply", description="folder (under remote.path) the reply files go to")
    suffix: str = Field(default=".rec", description="the reply is named <file name><suffix>")
    include_rejects: bool = Field(default=True, description="also upload the reject file (<name>.rej)")


class InboundConfig(_Section):
    """Picking files up: pattern, schedule, completeness, folders, limits."""

    pattern: str = Field(default="*", description="glob on the file name (e.g. CHG_*.dat)")
    poll: ScheduleConfig = Field(
        default_factory=lambda: ScheduleConfig(interval=30.0), description="when the folder is listed"
    )
    complete: CompleteConfig = Field(
        default_factory=CompleteConfig, description="when a file counts as completely written"
    )
    done_dir: str = Field(default="done", description="folder (under remote.path) processed files move to")
    error_dir: str = Field(
        default="error", description="folder (under remote.path) refused files move to, with a .err note"
    )
    max_line_bytes: int = Field(default=65536, ge=16, description="a longer line refuses the file")
    checkpoint_every: int = Field(default=500, ge=1, description="records between progress checkpoints")
    message_type: str | None = Field(default=None, description="Message.type of each record")
    reply: ReplyConfig = Field(default_factory=ReplyConfig, description="the reconciliation reply file")
    journal: bool = Field(
        default=True,
        description="journal each finished file's reconciliation (route batch:<endpoint>)",
    )


class AckConfig(_Section):
    """The peer answers every file with an ack file: ``esb health`` warns when one is late or miscounts."""

    endpoint: str = Field(
        pattern=r"^[a-z0-9_-]+\.[a-z0-9_-]+$",
        description="the inbound batch endpoint (system.endpoint) picking the acks up, e.g. dir114.acks_in",
    )
    name: str = Field(default="{file}.ack", description="the ack's file name: {file} is the sent file's name")
    within: Duration = Field(
        default=26 * 3600.0, description="a sent file with no ack after this long is late"
    )
    count_field: str | None = Field(
        default=None,
        description="the ack's header field with the records the peer received: esb health flags an ack "
        "whose count differs from the records sent",
    )
    accepted_field: str | None = Field(
        default=None,
        description="the ack's header field with the records the peer accepted: with rejected_field, "
        "esb health flags an ack whose accepted + rejected differs from its received (count_field)",
    )
    rejected_field: str | None = Field(
        default=None, description="the ack's header field with the records the peer rejected"
    )

    @field_validator("name")
    @classmethod
    def _names_the_file(cls, value: str) -> str:
        if "{file}" not in value or "/" in value:
            raise ValueError("name must contain {file} and no '/' (e.g. ACK_{file}, {file}.ack)")
        return value


class OutboundConfig(_Section):
    """Writing files: name pattern, schedule and/or size, sequence numbers, done file."""

    file_name: str = Field(description="e.g. '{province}_CUST_{date:%Y%m%d}_{seq:03d}.dat'")
    name_vars: dict[str, str] = Field(default_factory=dict, description="constants for file_name")
    schedule: ScheduleConfig | None = Field(
        default=None, description="flush on a schedule (cron: '0 2 * * *')"
    )
    max_records: int | None = Field(default=None, ge=1, description="flush when this many records wait")
    sequence_scope: Literal["day", "forever"] = Field(
        default="day", description="the {seq} counter restarts every day, or never"
    )
    done_suffix: str | None = Field(default=".ok", description="write <name><suffix> after the rename")
    write_empty: bool = Field(default=False, description="write a file with no detail records on schedule")
    ack: AckConfig | None = Field(
        default=None, description="the peer acks every file: esb health warns when an ack is late"
    )

    @field_validator("file_name")
    @classmethod
    def _pattern(cls, value: str) -> str:
        names = {f[1] for f in string.Formatter().parse(value) if f[1]}
        try:
            value.format_map({**{n: "x" for n in names}, "date": datetime(2024, 1, 2), "seq": 7})
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"file_name {value!r}: {exc}") from exc
        if "/" in value or "\\" in value or ".." in value:
            raise ValueError("file_name must be a plain name (no '/', '\\' or '..')")
        return value


class BatchEndpoint(EndpointConfig):
    """A folder of batch files on an SFTP/FTP/FTPS server or on local disk, in or out."""

    adapter: Literal["batch"] = "batch"
    format: Literal["xml", "json", "text", "bytes"] = "json"
    remote: RemoteConfig = Field(description="where the files are: a server folder or a local one")
    layout: Path = Field(description="layout file (config/layouts/*.yaml): records, fields, checks")
    encoding: str = Field(default="utf-8", description="file encoding: utf-8, gbk (read as gb18030), gb18030")
    inbound: InboundConfig | None = Field(
        default=None, description="pick files up: the endpoint is a route's from, one message per record"
    )
    outbound: OutboundConfig | None = Field(
        default=None, description="write files: the endpoint is a route's to"
    )

    @field_validator("encoding")
    @classmethod
    def _codec(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @property
    def read_encoding(self) -> str:
        """The codec used to decode: legacy GBK and GB2312 are read as GB18030, which covers them."""
        return "gb18030" if re.fullmatch(r"(?i)gbk|gb2312|cp936", self.encoding) else self.encoding
