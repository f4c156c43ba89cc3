"""Options of a REST endpoint (``adapter: rest`` in config/systems.yaml): TMF Open API v4 resources.

With ``listen`` the hub serves the resources (a source: ``POST {base}/productOrder`` or
``POST {base}/cancelProductOrder`` becomes a message for the route) and keeps them in its resource
store, which the endpoint's sink updates with state changes (and the TMF event hub announces to
registered listeners). Without ``listen`` the endpoint is a peer's REST API the hub calls (a sink and a
requester).

Secrets never appear in the file: passwords and bearer tokens come from ``password_env`` or
``password_file`` (the credential models are the SOAP adapter's, shared).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.http.options import Credential, ThrottleOptions, TLSOptions
from esb.config.durations import Duration
from esb.config.systems import EndpointConfig

#: The TMF resources the listener can serve: TMF622 ProductOrder and its CancelProductOrder task.
RESOURCES = ("productOrder", "cancelProductOrder")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenerAuth(_Strict):
    """Who may call the served resources: accounts proving a secret by HTTP basic or as a bearer token."""

    modes: list[Literal["basic", "bearer"]] = Field(
        default_factory=lambda: ["basic", "bearer"],  # type: ignore[arg-type]  # pydantic checks the literals
        min_length=1,
        description="accepted credentials: HTTP basic (user name and password) and/or "
        "`Authorization: Bearer <secret>` (the account's password used as its token)",
    )
    users: list[Credential] = Field(min_length=1, description="the accounts allowed to call")


class ServerTLS(_Strict):
    """Serving https: the listener's certificate chain and its private key (a secret file)."""

    cert_file: Path = Field(description="the listener's certificate chain (PEM), relative to the project")
    key_file: Path = Field(description="its private key (PEM, unencrypted; a secret file)")


class EventOptions(_Strict):
    """Posting TMF events to the listeners registered on ``{base}/hub``."""

    connect_timeout: Duration = Field(default=3.0, description="TCP connect timeout of a notification")
    timeout: Duration = Field(default=10.0, description="read timeout of a notification")
    max_attempts: int = Field(
        default=20, ge=1, description="attempts per event and listener before it is given up (journaled)"
    )
    initial_backoff: Duration = Field(default=1.0, description="wait before the second attempt")
    max_backoff: Duration = Field(default=300.0, description="longest wait between attempts")
    poll: Duration = Field(default=0.5, description="how often the dispatcher looks for events due")


class StoreOptions(_Strict):
    """How long the listener's resource store keeps what it no longer needs, and how it prunes."""

    events_keep: Duration | None = Field(
        default=7 * 86400.0,
        description="keep a delivered or given-up event row this long after its last attempt (each is "
        "journaled on the pseudo-route rest-events:<system.endpoint>); default 7 days, null: forever",
    )
    resources_keep: Duration | None = Field(
        default=30 * 86400.0,
        description="answer GET for a resource this long after its order reached a final state "
        "(completed, failed, cancelled, rejected, partial; done, terminatedWithError), then 404; "
        "never removed while the route has not accepted it or an event of it is still to post; "
        "default 30 days, null: forever",
    )
    prune_every: Duration = Field(
        default=3600.0, gt=0, description="how often the endpoint's leading hub process prunes the store"
    )
    prune_batch: int = Field(
        default=500,
        ge=1,
        le=50_000,
        description="rows deleted per statement (each a short write lock: other processes' POSTs go "
        "between them)",
    )
    prune_pause: Duration = Field(
        default=0.01, le=10.0, description="pause between two statements of a prune, for the other writers"
    )


class ListenOptions(_Strict):
    """Where and how the hub serves the TMF resources."""

    host: str = Field(default="127.0.0.1", description="bind address (loopback unless exposed on purpose)")
    port: int = Field(ge=0, le=65535, description="TCP port (0: any free port, for tests)")
    base_path: str = Field(
        default="/tmf-api/productOrderingManagement/v4",
        pattern=r"^(/[A-Za-z0-9_\-.]+)+$",
        description="URL path the resources are served under ({base}/productOrder, {base}/hub)",
    )
    resources: list[Literal["productOrder", "cancelProductOrder"]] = Field(
        default_factory=lambda: ["productOrder"],  # type: ignore[arg-type]  # pydantic checks the literals
        min_length=1,
        description="the TMF resources served (TMF622 productOrder, cancelProductOrder); each POST becomes "
        "a message of the endpoint's route, so serve a cancelProductOrder on an endpoint of its own",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="the URL callers reach {base} at, used in each resource's href "
        "(default: the bound listener's http(s)://host:port{base}; never the request's Host header)",
    )
    auth: ListenerAuth = Field(description="who may call: accepted modes and accounts")
    tls: ServerTLS | None = Field(default=None, description="serve https with this certificate and key")
    threads: int = Field(
        default=4,
        ge=1,
        le=256,
        description="HTTP worker threads; a POST holds one only until the order is stored (the route "
        "drains the store's inbox on its own threads)",
    )
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger bodies get HTTP 413")
    reply_timeout: Duration = Field(
        default=30.0,
        description="unused since a POST is answered once the order is stored (the route takes it from "
        "the store's inbox): kept so that existing configurations load",
    )
    validate_requests: bool = Field(
        default=True, description="validate POSTed bodies against the TMF schema of the resource"
    )
    schemas: Path = Field(
        default=Path("config/contracts/tmf"),
        description="folder of the TM Forum SID JSON schemas (relative to the project)",
    )
    throttle: ThrottleOptions = Field(
        default_factory=ThrottleOptions, description="lockout after repeated authentication failures"
    )
    events: EventOptions = Field(
        default_factory=EventOptions, description="delivery of TMF events to registered listeners"
    )
    store: StoreOptions = Field(
        default_factory=StoreOptions, description="retention and pruning of the listener's resource store"
    )


class RetryOptions(_Strict):
    """Retrying calls to a peer: connection errors, HTTP 5xx and 429 (honouring Retry-After)."""

    max_attempts: int = Field(default=3, ge=1, description="attempts per call, the first included")
    initial_backoff: Duration = Field(default=0.5, description="wait before the second attempt")
    max_backoff: Duration = Field(default=30.0, description="longest wait (a longer Retry-After is capped)")


class ClientAuth(Credential):
    """How the hub authenticates to a peer's REST API."""

    mode: Literal["basic", "bearer"] = Field(
        default="basic", description="HTTP basic, or the secret sent as `Authorization: Bearer`"
    )


class RESTEndpoint(EndpointConfig):
    """TMF Open API resources: served by the hub (``listen``) or called at a peer (``base_url``)."""

    adapter: Literal["rest"] = "rest"
    format: Literal["json"] = Field(default="json", description="bodies are JSON on the wire")
    message_type: str | None = Field(default=None, description="type given to messages the listener reads")
    listen: ListenOptions | None = Field(
        default=None, description="serve the resources: the hub is the server and the endpoint a source"
    )
    base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^?#\s]+$",
        description="the peer's API root (client), e.g. https://peer/tmf-api/productOrderingManagement/v4",
    )
    resource: str = Field(
        default="productOrder",
        pattern=r"^[A-Za-z][A-Za-z0-9_\-/]*$",
        description="path under base_url that messages are sent to (client)",
    )
    method: Literal["POST", "PATCH", "PUT"] = Field(default="POST", description="HTTP method of a write")
    auth: ClientAuth | None = Field(default=None, description="credentials sent on calls (client)")
    tls: TLSOptions | None = Field(default=None, description="CA and client certificate for https (client)")
    connect_timeout: Duration = Field(default=5.0, description="TCP connect timeout (client)")
    timeout: Duration = Field(default=30.0, description="read timeout of a call (client)")
    retries: RetryOptions = Field(default_factory=RetryOptions, description="retrying failed calls (client)")

    @model_validator(mode="after")
    def _role(self) -> RESTEndpoint:
        if self.listen is not None and (self.base_url or self.auth or self.tls):
            raise ValueError(
                "a listener endpoint (listen:) takes no base_url, auth or tls: those are for calls"
            )
        if self.listen is None and self.base_url is None:
            raise ValueError(
                "give listen: (the hub serves the resources) or base_url: (the hub calls a peer)"
            )
        return self
