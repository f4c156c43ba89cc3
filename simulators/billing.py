"""The simulated Billing system: the account service (createAccount, updateAccount, queryBalance) and the
subscriber service (createSubscriber, deleteSubscriber).

It speaks the contracts in ``config/contracts/billing/`` (``billing.wsdl`` and ``billing-subscriber.wsdl``)
over SOAP 1.1 and 1.2 with the simulators' own lxml code (simulators/soap_service.py), not the hub's
listener, so tests of the hub's SOAP client meet an independent implementation. One server answers both
services, on any path. Faults carry a Billing error code in their detail, as the real system's do:

- ``BIL-0503`` "system busy": queued with :meth:`BillingSimulator.busy_next` (transient);
- ``BIL-1001`` "invalid customer": a createAccount whose customerId starts with ``INVALID``;
- ``BIL-1004`` "account not found": updateAccount/queryBalance of an unknown account or MSISDN, and a
  createSubscriber on an account Billing does not hold (:meth:`BillingSimulator.restore` forgets accounts,
  as a restore from an old backup would);
- ``BIL-1005`` "subscriber not found": deleteSubscriber of a subscriber Billing never created.

createAccount is idempotent on ``externalId`` (the CRM's row id): a second create answers the account's id
and changes nothing, so a changed account needs updateAccount by Billing's own id (counted in ``updates``).
createSubscriber is idempotent on its ``externalId``
(the caller's idempotency key); deleteSubscriber of a deleted subscriber answers ``DELETED`` again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from simulators.soap_service import Fields, Handler, ServiceFault, SimulatedSOAPService, now_iso, required

TYPES = "http://billing.telecom.example/ws/types/v1"
FAULTS = "http://billing.telecom.example/ws/faults/v1"
#: The account statuses of the contract (bt:AccountStatus).
STATUSES = ("ACTIVE", "SUSPENDED", "CLOSED")
#: A Billing business fault (its code goes into the Fault's detail): the simulators' service fault.
BillingFault = ServiceFault


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


@dataclass
class Subscriber:
    """A subscriber (用户) as the simulator stores it: one subscription on an account."""

    subscriber_id: str
    external_id: str
    account_id: str
    service_type: str
    order_id: str = ""
    msisdn: str = ""
    status: str = "ACTIVE"


class BillingSimulator(SimulatedSOAPService):
    """The Billing web services as a WSGI application; ``serve()`` runs them on loopback with waitress.

    ``accounts`` and ``subscribers`` (by id) are its state; ``creations`` counts the subscribers made per
    ``externalId``, so a test can assert that none was created twice.
    """

    TYPES = TYPES
    FAULTS = FAULTS
    FAULT_ELEMENT = "BillingFault"
    NAME = "sim-billing"
    PATH = "/services/BillingAccount"
    BAD_REQUEST = "BIL-0400"
    UNAUTHORISED = "BIL-0401"
    BUSY = "BIL-0503"
    #: The subscriber service's path on the same server (any path answers both services).
    SUBSCRIBER_PATH: ClassVar[str] = "/services/BillingSubscriber"

    def __init__(self, username: str = "esb", password: str = "billing-secret") -> None:  # noqa: S107
        super().__init__(username, password)
        self.accounts: dict[str, Account] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self.creations: Counter[str] = Counter()
        self.updates: Counter[str] = Counter()
        self._next = 2000000000
        self._next_subscriber = 0

    # -- behaviour ----------------------------------------------------------------------------------

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

    def active_subscribers(self, order_id: str | None = None) -> list[Subscriber]:
        """The subscribers not deleted, only those of ``order_id`` if given (for a demo's final checks)."""
        with self._lock:
            return [
                s
                for s in self.subscribers.values()
                if s.status == "ACTIVE" and (order_id is None or s.order_id == order_id)
            ]

    def _create(self, f: Fields) -> dict[str, str]:
        if f.get("customerId", "").startswith("INVALID"):
            raise BillingFault("BIL-1001", f"invalid customer {f.get('customerId')}")
        with self._lock:
            return self._create_locked(f)

    def _create_locked(self, f: Fields) -> dict[str, str]:
        for account in self.accounts.values():
            if account.external_id == f["externalId"]:  # idempotent on the CRM's row id: not updated
                return {"accountId": account.account_id, "status": account.status, "createdAt": now_iso()}
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
        return {"accountId": account.account_id, "status": account.status, "createdAt": now_iso()}

    def _find(self, f: Fields) -> Account:
        if "accountId" in f and f["accountId"] in self.accounts:
            return self.accounts[f["accountId"]]
        for account in self.accounts.values():
            if f.get("msisdn") and f["msisdn"] in account.msisdns:
                return account
        raise BillingFault("BIL-1004", f"account not found: {f.get('accountId') or f.get('msisdn')}")

    def _update(self, f: Fields) -> dict[str, str]:
        """updateAccount: change the name, credit limit or status of an account Billing holds, named by
        Billing's own id (BIL-1004 for an id it does not hold: never created, or lost in a restore)."""
        account_id = required(f, "accountId", "BIL-0400")
        status = f.get("status") or None
        if status is not None and status not in STATUSES:
            allowed = ", ".join(STATUSES)
            raise BillingFault("BIL-0400", f"bad request: status {status!r} is not one of {allowed}")
        with self._lock:
            account = self.accounts.get(account_id)
            if account is None:
                raise BillingFault("BIL-1004", f"account not found: {account_id}")
            account.name = f.get("accountName") or account.name
            if f.get("creditLimit"):
                account.credit_limit = Decimal(f["creditLimit"])
            account.status = status or account.status
            self.updates[account_id] += 1
            return {"accountId": account.account_id, "status": account.status}

    def restore(self, keep: int = 0) -> None:
        """Billing restored from an old backup: only the first ``keep`` accounts it made are left."""
        with self._lock:
            for account_id in list(self.accounts)[keep:]:
                del self.accounts[account_id]

    def account_of(self, external_id: str) -> Account | None:
        """The account Billing holds for the CRM's row id ``external_id``, if any."""
        with self._lock:
            return next((a for a in self.accounts.values() if a.external_id == external_id), None)

    def _balance(self, f: Fields) -> dict[str, str]:
        a = self._find(f)
        return {
            "accountId": a.account_id,
            "balance": str(a.balance),
            "currency": a.currency,
            "creditLimit": str(a.credit_limit),
            "asOf": now_iso(),
        }

    def _create_subscriber(self, f: Fields) -> dict[str, str]:
        key = required(f, "externalId", "BIL-0400")
        with self._lock:
            for sub in self.subscribers.values():
                if sub.external_id == key:  # idempotent on the caller's key: never a second subscriber
                    return {"subscriberId": sub.subscriber_id, "status": sub.status, "createdAt": now_iso()}
            account = self._find({"accountId": required(f, "accountId", "BIL-0400")})
            self._next_subscriber += 1
            sub = Subscriber(
                f"S{self._next_subscriber:09d}",
                key,
                account.account_id,
                required(f, "serviceType", "BIL-0400"),
                f.get("orderId", ""),
                f.get("msisdn", ""),
            )
            self.subscribers[sub.subscriber_id] = sub
            self.creations[key] += 1
            if sub.msisdn and sub.msisdn not in account.msisdns:
                account.msisdns.append(sub.msisdn)  # so queryBalance by MSISDN finds the account
            return {"subscriberId": sub.subscriber_id, "status": sub.status, "createdAt": now_iso()}

    def _delete_subscriber(self, f: Fields) -> dict[str, str]:
        with self._lock:
            found = [
                s
                for s in self.subscribers.values()
                if s.subscriber_id == f.get("subscriberId")
                or (f.get("externalId") and s.external_id == f["externalId"])
            ]
            if not found:
                wanted = f.get("subscriberId") or f.get("externalId")
                raise BillingFault("BIL-1005", f"subscriber not found: {wanted}")
            sub = found[0]
            sub.status = "DELETED"
            account = self.accounts.get(sub.account_id)
            if account is not None and sub.msisdn in account.msisdns:
                account.msisdns.remove(sub.msisdn)
            return {"subscriberId": sub.subscriber_id, "status": sub.status}

    def operations(self) -> dict[str, tuple[str, Handler]]:
        """Request element local name -> (response element local name, handler)."""
        return {
            "CreateAccountRequest": ("CreateAccountResponse", self._create),
            "UpdateAccountRequest": ("UpdateAccountResponse", self._update),
            "QueryBalanceRequest": ("QueryBalanceResponse", self._balance),
            "CreateSubscriberRequest": ("CreateSubscriberResponse", self._create_subscriber),
            "DeleteSubscriberRequest": ("DeleteSubscriberResponse", self._delete_subscriber),
        }
