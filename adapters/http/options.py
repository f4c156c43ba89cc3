"""Options shared by the HTTP adapters (SOAP, REST): credentials, TLS, the listeners' throttle."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from esb.config.durations import Duration
from esb.exceptions import ConfigError


class Strict(BaseModel):
    """Base of the option models: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Credential(Strict):
    """A user name and where its password comes from (the environment or a secret file, never the YAML)."""

    username: str = Field(min_length=1, description="the account name")
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    password_file: Path | None = Field(default=None, description="file holding the password (one line)")

    @model_validator(mode="after")
    def _one_source(self) -> Credential:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env or password_file")
        return self

    def password(self, project_dir: Path | None = None) -> str:
        """Return the password; ConfigError (naming where it was looked for, never the value) if missing."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(f"password of {self.username!r}: ${self.password_env} is not set")
            return value
        assert self.password_file is not None
        path = self.password_file
        if not path.is_absolute() and project_dir is not None:
            path = project_dir / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"password of {self.username!r}: cannot read {path}: {exc.strerror}") from None


class TLSOptions(Strict):
    """TLS for https addresses: a CA file to trust, and an optional client certificate (mutual TLS).

    Paths are relative to the project. The key is a secret file (e.g. ``/run/secrets/esb.key``): it is
    read by OpenSSL only, never logged, and must not be encrypted (the hub could not prompt for it).
    """

    ca_file: Path | None = Field(default=None, description="PEM bundle of the CAs to trust (default: system)")
    cert_file: Path | None = Field(
        default=None, description="client certificate (PEM; may hold the key too, else give key_file)"
    )
    key_file: Path | None = Field(
        default=None, description="client certificate's private key (PEM, unencrypted; a secret file)"
    )
    verify: bool = Field(default=True, description="never switch off outside a lab")

    @model_validator(mode="after")
    def _consistent(self) -> TLSOptions:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file (the client certificate it belongs to)")
        if self.ca_file is not None and not self.verify:
            raise ValueError("ca_file is not used with verify: false (give one or the other)")
        return self


class ThrottleOptions(Strict):
    """Refusing a client address for a while after repeated authentication failures from it."""

    max_failures: int = Field(
        default=10, ge=0, description="failures from one address within `window` that lock it out (0: never)"
    )
    window: Duration = Field(default=60.0, description="how far back failures are counted")
    lockout: Duration = Field(
        default=300.0,
        description="how long a locked-out address is refused (HTTP 429), even with the right password",
    )
