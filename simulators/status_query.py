"""The simulated status query clients: the CRM's order view and the 10000 hotline ask the hub where an order
stands (flow 3 of issue 15), over SOAP against the hub's listeners.

Both are zeep clients of the hub's ``?wsdl`` (fetched once with HTTP basic, as the callers' tooling
does), with the credentials the listener endpoint names by environment variable (``password_env``, set
by :func:`simulators.devenv.ensure_credentials` in a simulation):

- the CRM (``crm.soap_order_status``): HTTP basic, SOAP 1.1, ``QueryOrderStatus_Input`` with
  ``Order_spcNumber`` or ``MSISDN``, as a Siebel outbound web service proxy calls;
- the hotline (``hotline.soap_order_status``): a WS-Security UsernameToken digest, SOAP 1.2,
  ``QueryOrderStatus`` with ``orderId`` or ``msisdn``.

:meth:`StatusQueryClient.query` returns the answer as plain data in the system's own names (the CRM's
``Found``/``ListOfOrder``, the hotline's ``found``/``order``) and :func:`orders` reads either as one list
of :class:`OrderSeen`; a fault (a query naming neither, the hub unable to answer) raises
:class:`QueryRefused` with its code and text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from simulators.devenv import password

if TYPE_CHECKING:
    from esb.project import Project

CRM_ENDPOINT = "crm.soap_order_status"
HOTLINE_ENDPOINT = "hotline.soap_order_status"


class QueryRefused(Exception):  # noqa: N818 - a refusal the caller sees, named as the callers name it
    """The hub answered the query with a SOAP fault: its code, text, and whether the caller was at fault."""

    def __init__(self, code: str, text: str, *, sender: bool) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text
        self.sender = sender
        """A Client (SOAP 1.1) or Sender (1.2) fault: the request was wrong, sending it again won't help."""


@dataclass(frozen=True)
class ComponentSeen:
    """One component of an answered order, as the caller read it."""

    id: str
    status: str
    state: str | None
    step: str | None


@dataclass(frozen=True)
class OrderSeen:
    """One answered order: its number, state (the CRM's code or the TMF name), process status and step."""

    order_id: str
    state: str
    status: str
    step: str | None
    components: list[ComponentSeen] = field(default_factory=list)


class StatusQueryClient:
    """A zeep client of one of the hub's QueryOrderStatus listeners (the CRM's or the hotline's)."""

    def __init__(self, url: str, username: str, secret: str, *, system: str, timeout: float = 10.0) -> None:
        if system not in ("crm", "hotline"):
            raise ValueError(f"system: expected crm or hotline, got {system!r}")
        self.url = url
        self.system = system
        self.username = username
        self._secret = secret
        self.timeout = timeout
        self._client: Any = None

    def connect(self) -> None:
        """Load the hub's WSDL (once) and set up the caller's authentication."""
        if self._client is not None:
            return
        from zeep import Client, Transport
        from zeep.wsse.username import UsernameToken

        session = requests.Session()
        session.auth = (self.username, self._secret)
        transport = Transport(session=session, operation_timeout=self.timeout, timeout=self.timeout)  # type: ignore[no-untyped-call]
        if self.system == "crm":
            client = Client(f"{self.url}?wsdl", transport=transport)  # type: ignore[no-untyped-call]
        else:
            client = Client(f"{self.url}?wsdl", transport=transport, port_name="HotlineSoap12Port")  # type: ignore[no-untyped-call]
            session.auth = None
            client.wsse = UsernameToken(self.username, self._secret, use_digest=True)  # type: ignore[no-untyped-call]
        self._client = client

    def query(self, *, order_id: str | None = None, msisdn: str | None = None) -> dict[str, Any]:
        """Ask where the order stands (by order number or MSISDN); return the answer as plain data."""
        if self.system == "crm":
            return self.call("QueryOrderStatus", Order_spcNumber=order_id, MSISDN=msisdn)
        return self.call("QueryOrderStatus", orderId=order_id, msisdn=msisdn)

    def call(self, operation: str, **fields: Any) -> dict[str, Any]:
        """Call ``operation`` of the hub's service; the answer as plain data; a fault raises QueryRefused."""
        from zeep.exceptions import Fault
        from zeep.helpers import serialize_object

        self.connect()
        try:
            answer = getattr(self._client.service, operation)(**fields)
        except Fault as fault:
            code = str(fault.code or "").split("}")[-1].split(":")[-1]
            sender = code in ("Client", "Sender")
            raise QueryRefused(
                _detail_code(fault) or code or "Fault", str(fault.message), sender=sender
            ) from None
        plain: dict[str, Any] = _plain(serialize_object(answer))  # type: ignore[no-untyped-call]
        return plain

    def close(self) -> None:
        """Forget the client (its HTTP session closes with it)."""
        client, self._client = self._client, None
        if client is not None:
            client.transport.session.close()


def _detail_code(fault: Any) -> str | None:
    """The hub's fault code (``<esb:error><code>``) in the fault's detail, if there is one."""
    detail = getattr(fault, "detail", None)
    if detail is None:
        return None
    for element in detail.iter():
        if isinstance(element.tag, str) and element.tag.endswith("}code") and element.text:
            return str(element.text)
    return None


def _plain(value: Any) -> Any:
    """zeep's ordered dicts and lists as plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def orders(answer: dict[str, Any]) -> list[OrderSeen]:
    """The orders of a CRM or hotline answer, read the same way (empty when the order was not found)."""
    if "Found" in answer:
        listed = (answer.get("ListOfOrder") or {}).get("Order") or []
        return [
            OrderSeen(
                order_id=o["Order_spcNumber"],
                state=o["Status"],
                status=o["Process_spcStatus"],
                step=o.get("Current_spcStep"),
                components=[
                    ComponentSeen(c["Id"], c["Process_spcStatus"], c.get("Status"), c.get("Current_spcStep"))
                    for c in ((o.get("ListOfComponent") or {}).get("Component") or [])
                ],
            )
            for o in listed
        ]
    return [
        OrderSeen(
            order_id=o["orderId"],
            state=o["state"],
            status=o["status"],
            step=o.get("step"),
            components=[
                ComponentSeen(c["componentId"], c["status"], c.get("state"), c.get("step"))
                for c in (o.get("component") or [])
            ],
        )
        for o in (answer.get("order") or [])
    ]


Client = TypeVar("Client", bound=StatusQueryClient)


def client_for(
    project: Project,
    endpoint: str,
    *,
    timeout: float = 10.0,
    kind: type[Client] = StatusQueryClient,  # type: ignore[assignment]  # mypy: a TypeVar's default
) -> Client:
    """The ``kind`` of client of the hub's listener ``endpoint`` (URL and first user from the project)."""
    from adapters.soap.config import SOAPEndpoint

    config = project.endpoint(endpoint)
    if not isinstance(config, SOAPEndpoint) or config.listen is None:
        raise ValueError(f"{endpoint}: expected a SOAP endpoint the hub serves (listen:)")
    listen = config.listen
    user = listen.auth.users[0]
    if not user.password_env:
        raise ValueError(
            f"{endpoint}: the simulated clients read the password from the environment (password_env)"
        )
    system = endpoint.split(".", 1)[0]
    url = f"http://{listen.host}:{listen.port}{listen.path}"
    return kind(url, user.username, password(user.password_env), system=system, timeout=timeout)


def crm_client(project: Project, *, timeout: float = 10.0) -> StatusQueryClient:
    """The CRM's status query client (``crm.soap_order_status``)."""
    return client_for(project, CRM_ENDPOINT, timeout=timeout)


def hotline_client(project: Project, *, timeout: float = 10.0) -> StatusQueryClient:
    """The 10000 hotline's status query client (``hotline.soap_order_status``)."""
    return client_for(project, HOTLINE_ENDPOINT, timeout=timeout)
