"""The simulated Billing system: the Billing account web service (createAccount, updateAccount, queryBalance).

It speaks the contract in ``config/contracts/billing/`` over SOAP 1.1 and 1.2, with its own small lxml
code (not the hub's listener), so tests of the hub's SOAP client meet an independent implementation.
Faults carry a Billing error code in their detail, as the real system's do:

- ``BIL-0503`` "system busy": queued with :meth:`BillingSimulator.busy_next` (transient);
- ``BIL-1001`` "invalid customer": a createAccount whose customerId starts with ``INVALID``;
- ``BIL-1004`` "account not found": updateAccount/queryBalance of an unknown account or MSISDN.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lxml import etree

from esb.exceptions import EsbError
from esb.xmlsafe import parse_xml

TYPES = "http://billing.telecom.example/ws/types/v1"
FAULTS = "http://billing.telecom.example/ws/faults/v1"
ENVELOPES = {
    "1.1": "http://schemas.xmlsoap.org/soap/envelope/",
    "1.2": "http://www.w3.org/2003/05/soap-envelope",
}
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


class BillingFault(Exception):  # noqa: N818 - named as the contract names it
    """A Billing business fault (its code goes into the Fault's detail)."""

    def __init__(self, code: str, text: str, *, server: bool = False) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.server = server


@dataclass
class Account:
    """A billing account as the simulator stores it."""

    account_id: str
    external_id: str
    customer_id: str
    name: str
    rating_type: str
    currency: str = "CNY"
    credit_limit: Decimal = Decimal("0")
    balance: Decimal = Decimal("0")
    status: str = "ACTIVE"
    msisdns: list[str] = field(default_factory=list)


class BillingSimulator:
    """The Billing web service as a WSGI application; ``serve()`` runs it on loopback with waitress."""

    def __init__(self, username: str = "esb", password: str = "billing-secret") -> None:  # noqa: S107
        self.username = username
        self.password = password
        self.accounts: dict[str, Account] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._busy = 0
        self._next = 2000000000
        self._lock = threading.Lock()
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.nonces: Any = None  # WS-Security nonces seen (made at the first digest token)

    # -- behaviour ----------------------------------------------------------------------------------
    def busy_next(self, count: int = 1) -> None:
        """Answer the next ``count`` calls with the transient fault BIL-0503 (system busy)."""
        with self._lock:
            self._busy += count

    def add_account(self, account_id: str, *, balance: str = "0", msisdn: str | None = None) -> Account:
        """Create an account directly (test data)."""
        account = Account(
            account_id,
            account_id,
            "CUST",
            "test",
            "PREPAID",
            balance=Decimal(balance),
            msisdns=[msisdn] if msisdn else [],
        )
        self.accounts[account_id] = account
        return account

    def _create(self, f: dict[str, str]) -> dict[str, str]:
        if f.get("customerId", "").startswith("INVALID"):
            raise BillingFault("BIL-1001", f"invalid customer {f.get('customerId')}")
        for account in self.accounts.values():
            if account.external_id == f["externalId"]:  # idempotent on the CRM's row id
                return {"accountId": account.account_id, "status": account.status, "createdAt": _now()}
        self._next += 1
        account = Account(
            str(self._next),
            f["externalId"],
            f["customerId"],
            f["accountName"],
            f["ratingType"],
            f.get("currency", "CNY"),
            Decimal(f.get("creditLimit", "0")),
        )
        self.accounts[account.account_id] = account
        return {"accountId": account.account_id, "status": account.status, "createdAt": _now()}

    def _find(self, f: dict[str, str]) -> Account:
        if "accountId" in f and f["accountId"] in self.accounts:
            return self.accounts[f["accountId"]]
        for account in self.accounts.values():
            if f.get("msisdn") and f["msisdn"] in account.msisdns:
                return account
        raise BillingFault("BIL-1004", f"account not found: {f.get('accountId') or f.get('msisdn')}")

    def _update(self, f: dict[str, str]) -> dict[str, str]:
        account = self._find(f)
        account.name = f.get("accountName", account.name)
        account.credit_limit = Decimal(f.get("creditLimit", account.credit_limit))
        account.status = f.get("status", account.status)
        return {"accountId": account.account_id, "status": account.status}

    def _balance(self, f: dict[str, str]) -> dict[str, str]:
        a = self._find(f)
        return {
            "accountId": a.account_id,
            "balance": str(a.balance),
            "currency": a.currency,
            "creditLimit": str(a.credit_limit),
            "asOf": _now(),
        }

    def operations(self) -> dict[str, tuple[str, Callable[[dict[str, str]], dict[str, str]]]]:
        """Request element local name -> (response element local name, handler)."""
        return {
            "CreateAccountRequest": ("CreateAccountResponse", self._create),
            "UpdateAccountRequest": ("UpdateAccountResponse", self._update),
            "QueryBalanceRequest": ("QueryBalanceResponse", self._balance),
        }

    # -- HTTP ---------------------------------------------------------------------------------------
    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry point."""
        version = "1.2" if "soap+xml" in (environ.get("CONTENT_TYPE") or "") else "1.1"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            root = parse_xml(environ["wsgi.input"].read(length))
            version = "1.2" if root.tag.startswith(f"{{{ENVELOPES['1.2']}}}") else "1.1"
            ns = ENVELOPES[version]
            if not self._authorised(environ, root.find(f"{{{ns}}}Header")):
                raise BillingFault("BIL-0401", "authentication failed")
            request = next(c for c in root.find(f"{{{ns}}}Body") if isinstance(c.tag, str))
            name = etree.QName(request).localname
            fields = {
                etree.QName(c).localname: (c.text or "").strip() for c in request if isinstance(c.tag, str)
            }
            self.calls.append((name, fields))
            with self._lock:
                busy, self._busy = self._busy > 0, max(self._busy - 1, 0)
            if busy:
                raise BillingFault("BIL-0503", "system busy, try again later", server=True)
            if name not in self.operations():
                raise BillingFault("BIL-0400", f"unknown operation {name}")
            out_name, handler = self.operations()[name]
            body, status = _response(version, out_name, handler(fields)), "200 OK"
        except BillingFault as fault:
            body, status = _fault(version, fault), "500 Internal Server Error"
        except (EsbError, StopIteration, AttributeError, KeyError, ArithmeticError) as exc:
            body, status = (
                _fault(version, BillingFault("BIL-0400", f"bad request: {exc}")),
                "500 Internal Server Error",
            )
        ctype = "application/soap+xml; charset=utf-8" if version == "1.2" else "text/xml; charset=utf-8"
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def _authorised(self, environ: dict[str, Any], header: etree._Element | None) -> bool:
        basic = environ.get("HTTP_AUTHORIZATION", "")
        if basic.lower().startswith("basic "):
            given = base64.b64decode(basic[6:]).decode("utf-8", "replace")
            return hmac.compare_digest(given.encode(), f"{self.username}:{self.password}".encode())
        if header is not None:
            from adapters.soap.nonces import MemoryNonceStore
            from adapters.soap.security import check_wsse

            if self.nonces is None:
                self.nonces = MemoryNonceStore()
            return check_wsse(header, {self.username: self.password}, self.nonces) == self.username
        return False

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host``:``port`` in a background thread; return the service URL."""
        from waitress.server import create_server

        self.server = create_server(self.app, host=host, port=port, threads=4, ident="billing-sim")
        self.thread = threading.Thread(target=self.server.run, name="sim-billing", daemon=True)
        self.thread.start()
        return f"http://{host}:{self.server.effective_port}/services/BillingAccount"

    def stop(self) -> None:
        """Stop serving."""
        server, self.server = self.server, None
        if server is None:
            return
        from adapters.soap.server import stop_server

        stop_server(server, self.thread)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _envelope(version: str) -> tuple[etree._Element, etree._Element]:
    ns = ENVELOPES[version]
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    return env, etree.SubElement(env, f"{{{ns}}}Body")


def _response(version: str, name: str, values: dict[str, str]) -> bytes:
    env, body = _envelope(version)
    out = etree.SubElement(body, f"{{{TYPES}}}{name}", nsmap={"bt": TYPES})
    for key, value in values.items():
        etree.SubElement(out, f"{{{TYPES}}}{key}").text = value
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _fault(version: str, fault: BillingFault) -> bytes:
    ns = ENVELOPES[version]
    env, body = _envelope(version)
    node = etree.SubElement(body, f"{{{ns}}}Fault")
    if version == "1.1":
        etree.SubElement(node, "faultcode").text = "soap:" + ("Server" if fault.server else "Client")
        etree.SubElement(node, "faultstring").text = fault.text
        detail = etree.SubElement(node, "detail")
    else:
        code = etree.SubElement(etree.SubElement(node, f"{{{ns}}}Code"), f"{{{ns}}}Value")
        code.text = "soap:" + ("Receiver" if fault.server else "Sender")
        etree.SubElement(etree.SubElement(node, f"{{{ns}}}Reason"), f"{{{ns}}}Text").text = fault.text
        detail = etree.SubElement(node, f"{{{ns}}}Detail")
    error = etree.SubElement(detail, f"{{{FAULTS}}}BillingFault", nsmap={"bf": FAULTS})
    etree.SubElement(error, f"{{{FAULTS}}}errorCode").text = fault.code
    etree.SubElement(error, f"{{{FAULTS}}}errorMessage").text = fault.text
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))
