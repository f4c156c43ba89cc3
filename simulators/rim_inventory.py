"""The simulated RIM's state: number and port pools, reservations (预占) with an expiry, no SOAP.

A number or port is ``FREE``, ``PRE_RESERVED`` (held by a reservation until it expires) or ``OCCUPIED``
(the reservation was confirmed: 实占). A reservation is ``PRE_RESERVED``, ``CONFIRMED``, ``RELEASED``
or ``EXPIRED``; releasing or expiring it returns its resources to ``FREE``. Every reservation carries
the caller's idempotency key, and a second reserve with the same key returns the same reservation.
Time comes from an injectable clock, so tests move it instead of waiting. Refusals are
:class:`~simulators.soap_service.ServiceFault` with the codes in :data:`CODES`.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from simulators.soap_service import Fields, ServiceFault

FREE, PRE_RESERVED, OCCUPIED = "FREE", "PRE_RESERVED", "OCCUPIED"
CONFIRMED, RELEASED, EXPIRED = "CONFIRMED", "RELEASED", "EXPIRED"
#: How long a reservation holds its resources when the request names no expiry.
DEFAULT_EXPIRY = 1800
CODES = {
    "RIM-0400": "bad request",
    "RIM-1001": "no number available",
    "RIM-1002": "number not free",
    "RIM-1003": "no port available",
    "RIM-1004": "reservation not found",
    "RIM-1005": "reservation no longer held (expired or released)",
    "RIM-1006": "idempotency key already used for another order or component",
    "RIM-1007": "unknown number",
}
_PATTERN = re.compile(r"[0-9?*]{1,11}")


@dataclass
class Number:
    """One MSISDN of the pool."""

    msisdn: str
    area_code: str
    state: str = FREE
    reservation_id: str | None = None


@dataclass
class Port:
    """One broadband port (an OLT/DSLAM port) at an exchange."""

    port_id: str
    exchange: str
    state: str = FREE
    reservation_id: str | None = None


@dataclass
class Reservation:
    """Resources held for one order component under one idempotency key."""

    reservation_id: str
    key: str
    order_id: str
    component_id: str
    expires_at: float
    state: str = PRE_RESERVED
    msisdn: str | None = None
    port_id: str | None = None
    exchange: str | None = None

    @property
    def holds(self) -> bool:
        """True while it holds resources (pre-reserved or confirmed)."""
        return self.state in (PRE_RESERVED, CONFIRMED)


def fault(code: str, detail: str) -> ServiceFault:
    """A RIM fault with its code's text and the detail of this case."""
    return ServiceFault(code, f"{CODES[code]}: {detail}")


class RIMInventory:
    """Numbers, ports and reservations; every method is atomic (one lock)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.numbers: dict[str, Number] = {}
        self.ports: dict[str, Port] = {}
        self.addresses: dict[str, str] = {}
        self.reservations: dict[str, Reservation] = {}
        self.by_key: dict[str, str] = {}
        #: reservations made per idempotency key (a test asserts none above 1)
        self.made: Counter[str] = Counter()
        self._next = 0
        self._lock = threading.RLock()

    # -- test data ----------------------------------------------------------------------------------
    def add_numbers(self, area_code: str, msisdns: Iterable[str]) -> None:
        """Put free numbers of ``area_code`` in the pool."""
        with self._lock:
            for msisdn in msisdns:
                self.numbers[msisdn] = Number(msisdn, area_code)

    def add_ports(self, exchange: str, port_ids: Iterable[str], addresses: Iterable[str] = ()) -> None:
        """Put free ports of ``exchange`` in the pool; ``addresses`` are standard addresses it serves."""
        with self._lock:
            for port_id in port_ids:
                self.ports[port_id] = Port(port_id, exchange)
            for address in addresses:
                self.addresses[address] = exchange

    # -- operations ---------------------------------------------------------------------------------
    def reserve(self, key: str, order_id: str, component_id: str, expiry: float, f: Fields) -> Reservation:
        """Pre-reserve the number and/or port ``f`` asks for (``number``, ``port``), or return the
        reservation already made under ``key``."""
        with self._lock:
            known = self.by_key.get(key)
            if known is not None:
                found = self.reservations[known]
                if (found.order_id, found.component_id) != (order_id, component_id):
                    raise fault("RIM-1006", f"{key!r} reserved for {found.order_id}/{found.component_id}")
                return found
            wants_number, wants_port = isinstance(f.get("number"), dict), isinstance(f.get("port"), dict)
            if not (wants_number or wants_port):
                raise fault("RIM-0400", "expected a number and/or a port to reserve, got neither")
            number = self._pick_number(f["number"]) if wants_number else None
            port = self._pick_port(f["port"]) if wants_port else None
            self._next += 1
            reservation = Reservation(
                f"R{self._next:08d}", key, order_id, component_id, self.clock() + expiry
            )
            for held in (number, port):
                if held is not None:
                    held.state, held.reservation_id = PRE_RESERVED, reservation.reservation_id
            if number is not None:
                reservation.msisdn = number.msisdn
            if port is not None:
                reservation.port_id, reservation.exchange = port.port_id, port.exchange
            self.reservations[reservation.reservation_id] = reservation
            self.by_key[key] = reservation.reservation_id
            self.made[key] += 1
            return reservation

    def _pick_number(self, wanted: Fields) -> Number:
        if wanted.get("msisdn"):
            number = self.numbers.get(wanted["msisdn"])
            if number is None:
                raise fault("RIM-1007", f"{wanted['msisdn']} is not in RIM's pool")
            if number.state != FREE:
                raise fault("RIM-1002", f"{number.msisdn} is {number.state}")
            return number
        area, pattern = wanted.get("areaCode") or None, wanted.get("pattern") or None
        if pattern is not None and not _PATTERN.fullmatch(pattern):
            raise fault("RIM-0400", f"pattern {pattern!r}: expected digits, '?' and '*'")
        for number in self.numbers.values():
            if number.state != FREE or (area and number.area_code != area):
                continue
            if pattern is None or fnmatch.fnmatchcase(number.msisdn, pattern):
                return number
        raise fault("RIM-1001", f"no free number for area {area or 'any'} and pattern {pattern or 'any'}")

    def _pick_port(self, wanted: Fields) -> Port:
        exchange = wanted.get("exchange") or None
        if exchange is None:
            address = wanted.get("address") or ""
            if not address:
                raise fault("RIM-0400", "a port request needs an exchange or an address, got neither")
            exchange = self.addresses.get(address)
            if exchange is None:
                raise fault("RIM-1003", f"no exchange serves the address {address!r}")
        for port in self.ports.values():
            if port.exchange == exchange and port.state == FREE:
                return port
        raise fault("RIM-1003", f"no free port at exchange {exchange}")

    def find(self, reservation_id: str | None = None, key: str | None = None) -> Reservation:
        """The reservation with this id, or made under this idempotency key."""
        with self._lock:
            rid = reservation_id or (self.by_key.get(key) if key else None)
            if rid is None or rid not in self.reservations:
                raise fault("RIM-1004", f"{reservation_id or key!r}")
            return self.reservations[rid]

    def confirm(self, reservation_id: str | None = None, key: str | None = None) -> Reservation:
        """Turn a pre-reservation into an occupation (实占); confirming twice is no change."""
        with self._lock:
            reservation = self.find(reservation_id, key)
            if reservation.state == CONFIRMED:
                return reservation
            if reservation.state != PRE_RESERVED:
                raise fault("RIM-1005", f"{reservation.reservation_id} is {reservation.state}")
            reservation.state = CONFIRMED
            self._set(reservation, OCCUPIED)
            return reservation

    def release(self, reservation_id: str | None = None, key: str | None = None) -> Reservation:
        """Give the resources back (pre-reserved or confirmed); releasing twice, or an expired
        reservation, is no change."""
        with self._lock:
            reservation = self.find(reservation_id, key)
            if reservation.holds:
                reservation.state = RELEASED
                self._set(reservation, FREE)
            return reservation

    def expire_due(self) -> list[Reservation]:
        """Expire every pre-reservation past its time, returning its resources; return those expired."""
        with self._lock:
            now = self.clock()
            due = [r for r in self.reservations.values() if r.state == PRE_RESERVED and r.expires_at <= now]
            for reservation in due:
                reservation.state = EXPIRED
                self._set(reservation, FREE)
            return due

    def next_expiry(self) -> float | None:
        """When the next pre-reservation expires (clock time), or None when none is held."""
        with self._lock:
            times = [r.expires_at for r in self.reservations.values() if r.state == PRE_RESERVED]
            return min(times) if times else None

    def number(self, msisdn: str) -> Number:
        """One number of the pool."""
        with self._lock:
            if msisdn not in self.numbers:
                raise fault("RIM-1007", f"{msisdn} is not in RIM's pool")
            return self.numbers[msisdn]

    def live_reservations(self, order_id: str | None = None) -> list[Reservation]:
        """The reservations still holding resources, only those of ``order_id`` if given."""
        with self._lock:
            return [
                r
                for r in self.reservations.values()
                if r.holds and (order_id is None or r.order_id == order_id)
            ]

    def _set(self, reservation: Reservation, state: str) -> None:
        held_by = None if state == FREE else reservation.reservation_id
        if reservation.msisdn is not None:
            number = self.numbers[reservation.msisdn]
            number.state, number.reservation_id = state, held_by
        if reservation.port_id is not None:
            port = self.ports[reservation.port_id]
            port.state, port.reservation_id = state, held_by
