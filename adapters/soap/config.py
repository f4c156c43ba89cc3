"""Options of a SOAP endpoint (``adapter: soap`` in config/systems.yaml).

One endpoint is one operation of one WSDL. Without ``listen`` it is a client endpoint (a sink, or the
target of an ``enrich`` step) calling a peripheral system; with ``listen`` it is served by the hub to
peripheral systems (a source). Endpoints naming the same ``listen.host``/``listen.port`` share one HTTP
server; endpoints with the same ``listen.path`` share one WSDL there.

The WSDL and every file it imports must lie under ``contract_root`` (default ``config/contracts``): a
published multi-file set (``wsdl/<service>/v2/Service.wsdl`` importing ``../../../xsd/...``) loads as it
is, nothing outside the root is read and nothing is fetched over the network.

Secrets never appear in the file: a password is read from ``password_env`` or ``password_file``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from adapters.http.options import Credential, Strict, ThrottleOptions, TLSOptions
from esb.config.durations import Duration
from esb.config.systems import EndpointConfig

#: where a project keeps its contracts, and the default contract root of every SOAP endpoint
DEFAULT_CONTRACT_ROOT = Path("config/contracts")


class ClientAuth(Credential):
    """How the hub authenticates to a peripheral system's web service."""

    mode: Literal["basic", "wsse-text", "wsse-digest"] = Field(
        default="basic",
        description="HTTP basic, or a WS-Security UsernameToken (PasswordText/PasswordDigest)",
    )
    timestamp: bool = Field(default=True, description="add a wsu:Timestamp to WS-Security headers")


class ListenerAuth(Strict):
    """Who may call a web service the hub serves. There is no anonymous mode."""

    modes: list[Literal["basic", "wsse"]] = Field(
        default_factory=lambda: ["basic", "wsse"],  # type: ignore[arg-type]  # pydantic checks the literals
        min_length=1,
        description="accepted credentials: HTTP basic and/or a WS-Security UsernameToken (text or digest)",
    )
    users: list[Credential] = Field(min_length=1, description="the accounts allowed to call")


class ListenOptions(Strict):
    """Where and how the hub serves the endpoint's WSDL operation."""

    host: str = Field(default="127.0.0.1", description="bind address (loopback unless exposed on purpose)")
    port: int = Field(ge=0, le=65535, description="TCP port (0: any free port, for tests)")
    path: str = Field(default="/soap", pattern=r"^/[A-Za-z0-9_\-/.]*$", description="URL path of the service")
    auth: ListenerAuth = Field(description="who may call: accepted modes and users")
    threads: int = Field(default=8, ge=1, le=256, description="HTTP worker threads of the shared server")
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger requests get a Fault")
    reply_timeout: Duration = Field(default=30.0, description="how long a caller waits for the route")
    validate_requests: bool = Field(default=True, description="validate the body against the WSDL's schema")
    unwrap: bool = Field(
        default=False, description="pass on the operation element's first child (a SiebelMessage)"
    )
    wsdl_public: bool = Field(default=False, description="serve ?wsdl without authentication")
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="the URL callers reach this path at, written into the served WSDL "
        "(default: http://host:port/path of the bound listener; never the request's Host header)",
    )
    soap_action: Literal["strict", "lenient", "ignore"] = Field(
        default="strict",
        description="checking the SOAPAction (SOAP 1.1 header, SOAP 1.2 Content-Type action) against the "
        "operation's: strict (must match), lenient (a missing or empty one passes), ignore",
    )
    throttle: ThrottleOptions = Field(
        default_factory=ThrottleOptions, description="lockout after repeated authentication failures"
    )
    inline: bool = Field(
        default=True,
        description="run the route's steps, journal and sinks on the server thread that received the "
        "request (concurrent requests share the journal's commits) instead of handing it to the route's "
        "worker thread (false); routes with an aggregate or a file-writing destination always hand over",
    )


class SOAPEndpoint(EndpointConfig):
    """One operation of a WSDL: called by the hub (no ``listen``) or served by it (``listen``)."""

    adapter: Literal["soap"] = "soap"
    format: Literal["xml", "json", "text", "bytes"] = Field(
        default="xml", description="what the body is on the wire (xml: the operation's XML)"
    )
    wsdl: Path = Field(
        description="the WSDL file, relative to the project (imports resolved from local files)"
    )
    contract_root: Path = Field(
        default=DEFAULT_CONTRACT_ROOT,
        description="the folder, relative to the project, that the WSDL and every file it imports "
        "(wsdl:import, xsd:import, xsd:include, xsd:redefine, at any depth, symbolic links resolved) "
        "must lie in; nothing outside it is read and nothing is fetched over the network",
    )
    service: str | None = Field(default=None, description="wsdl:service name (default: the only one)")
    port: str | None = Field(default=None, description="wsdl:port name (default: the first SOAP port)")
    operation: str = Field(min_length=1, description="the operation this endpoint calls or serves")
    address: str | None = Field(default=None, description="overrides the port's soap:address (client)")
    timeout: Duration = Field(default=30.0, description="operation timeout of a call (client)")
    load_timeout: Duration = Field(default=10.0, description="timeout for loading WSDL documents")
    connect_timeout: Duration = Field(default=5.0, description="TCP connect timeout (client)")
    retryable_faults: list[str] = Field(
        default_factory=list,
        description="fault codes redelivered (faultcode local name or detail error code); others dead-letter",
    )
    auth: ClientAuth | None = Field(default=None, description="credentials sent on calls (client)")
    tls: TLSOptions | None = Field(default=None, description="CA and client certificate for https (client)")
    listen: ListenOptions | None = Field(
        default=None, description="serve the operation: the hub is the server and the endpoint a source"
    )
    message_type: str | None = Field(default=None, description="type given to messages read from a listener")

    @model_validator(mode="after")
    def _role(self) -> SOAPEndpoint:
        if self.listen is not None and (self.address or self.auth or self.tls):
            raise ValueError(
                "a listener endpoint (listen:) takes no address, auth or tls: those are for calls"
            )
        return self

    def wsdl_path(self, project_dir: Path) -> Path:
        """Return the WSDL's absolute path."""
        return Path(os.path.abspath(project_dir / self.wsdl))

    def contract_root_path(self, project_dir: Path) -> Path:
        """Return the contract root's absolute path."""
        return Path(os.path.abspath(project_dir / self.contract_root))
