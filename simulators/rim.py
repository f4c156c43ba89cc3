"""The simulated RIM (resource inventory): reserves numbers and broadband ports over SOAP, with an expiry.

It speaks ``config/contracts/rim/rim.wsdl`` (ReserveResources, ConfirmReservation, ReleaseReservation,
QueryNumber) over SOAP 1.1 and 1.2 with the simulators' own lxml code; the pools, states and
reservations live in :class:`~simulators.rim_inventory.RIMInventory`. A timer thread expires
pre-reservations when their time comes, returning their number and port to the pool. Injected failures:

- ``refusal_rate``: that share of new reservations is refused with ``RIM-1001`` "no number available";
- ``refuse_all``: every new reservation is refused so (a repeat of a reservation already made still
  returns it: the key is idempotent);
- ``refuse_orders``: the order ids whose new reservations are all refused so: a refusal decided per
  order in advance (the demo's scenarios), not drawn at random;
- ``latency``: seconds every answer waits;
- :meth:`RIMSimulator.busy_next`: the next calls get the transient ``RIM-0503`` "system busy".

For tests and a demo's final checks: ``inventory.live_reservations(order_id)``, ``inventory.made``
(reservations made per idempotency key), ``inventory.number(msisdn).state``.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from simulators.rim_inventory import DEFAULT_EXPIRY, Reservation, RIMInventory, fault
from simulators.soap_service import Fields, Handler, SimulatedSOAPService, required

TYPES = "http://rim.telecom.example/ws/types/v1"
FAULTS = "http://rim.telecom.example/ws/faults/v1"
#: The longest the expiry timer sleeps, so a clock moved by a test is noticed soon.
TIMER_TICK = 0.2


def default_inventory(clock: Callable[[], float] = time.time) -> RIMInventory:
    """The pools `make run` and the demo use: 500 numbers in each of two areas, 200 ports at each of two
    exchanges, and a few standard addresses."""
    inventory = RIMInventory(clock)
    inventory.add_numbers("571", (f"1335710{n:04d}" for n in range(500)))  # Hangzhou
    inventory.add_numbers("574", (f"1335740{n:04d}" for n in range(500)))  # Ningbo
    inventory.add_ports(
        "HZ-XH",
        (f"HZ-XH-OLT01-1/{n // 64 + 1}/{n % 64 + 1}" for n in range(200)),
        ("浙江省杭州市西湖区文三路90号", "浙江省杭州市西湖区教工路18号"),
    )
    inventory.add_ports(
        "NB-HS",
        (f"NB-HS-OLT02-1/{n // 64 + 1}/{n % 64 + 1}" for n in range(200)),
        ("浙江省宁波市海曙区中山西路2号",),
    )
    return inventory


class RIMSimulator(SimulatedSOAPService):
    """The RIM resource web service; ``serve()`` also starts the expiry timer, ``stop()`` ends both."""

    TYPES = TYPES
    FAULTS = FAULTS
    FAULT_ELEMENT = "RIMFault"
    NAME = "sim-rim"
    PATH = "/services/RIMResource"
    BAD_REQUEST = "RIM-0400"
    UNAUTHORISED = "RIM-0401"
    BUSY = "RIM-0503"

    def __init__(
        self,
        username: str = "esb",
        password: str = "rim-secret",  # noqa: S107 - a test default, like the Billing simulator's
        *,
        inventory: RIMInventory | None = None,
        refusal_rate: float = 0.0,
        refuse_all: bool = False,
        latency: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(username, password)
        self.inventory = inventory if inventory is not None else default_inventory()
        self.refusal_rate = refusal_rate
        self.refuse_all = refuse_all
        self.latency = latency
        self.refused = 0
        #: order ids whose new reservations are refused (RIM-1001), decided in advance by a scenario
        self.refuse_orders: set[str] = set()
        self._random = random.Random(seed)  # noqa: S311 - simulated failures, not security
        self._stop_timer = threading.Event()
        self._timer: threading.Thread | None = None

    def _reserve(self, f: Fields) -> dict[str, Any]:
        key = required(f, "idempotencyKey", "RIM-0400")
        order_id = required(f, "orderId", "RIM-0400")
        expiry = int(f.get("expirySeconds") or DEFAULT_EXPIRY)
        with self._lock:
            if key not in self.inventory.by_key and (order_id in self.refuse_orders or self._refuses()):
                self.refused += 1
                raise fault("RIM-1001", f"pool exhausted for order {order_id} (injected)")
            reservation = self.inventory.reserve(key, order_id, f.get("componentId", ""), expiry, f)
        return {
            "reservationId": reservation.reservation_id,
            "state": reservation.state,
            "expiresAt": _iso(reservation.expires_at),
            "msisdn": reservation.msisdn,
            "portId": reservation.port_id,
            "exchange": reservation.exchange,
        }

    def _refuses(self) -> bool:
        return self.refuse_all or (self.refusal_rate > 0 and self._random.random() < self.refusal_rate)

    def _confirm(self, f: Fields) -> dict[str, str]:
        return _status(self.inventory.confirm(f.get("reservationId"), f.get("idempotencyKey")))

    def _release(self, f: Fields) -> dict[str, str]:
        return _status(self.inventory.release(f.get("reservationId"), f.get("idempotencyKey")))

    def _query_number(self, f: Fields) -> dict[str, Any]:
        number = self.inventory.number(required(f, "msisdn", "RIM-0400"))
        held = self.inventory.reservations.get(number.reservation_id or "")
        return {
            "msisdn": number.msisdn,
            "state": number.state,
            "areaCode": number.area_code,
            "reservationId": number.reservation_id,
            "orderId": held.order_id if held else None,
        }

    def operations(self) -> dict[str, tuple[str, Handler]]:
        """Request element local name -> (response element local name, handler)."""
        return {
            "ReserveResourcesRequest": ("ReserveResourcesResponse", self._reserve),
            "ConfirmReservationRequest": ("ConfirmReservationResponse", self._confirm),
            "ReleaseReservationRequest": ("ReleaseReservationResponse", self._release),
            "QueryNumberRequest": ("QueryNumberResponse", self._query_number),
        }

    # -- the expiry timer ---------------------------------------------------------------------------
    def start_timer(self) -> None:
        """Start the thread that expires pre-reservations when their time comes (``serve`` does)."""
        if self._timer is None:
            self._stop_timer.clear()
            self._timer = threading.Thread(target=self._expire_forever, name="sim-rim-expiry", daemon=True)
            self._timer.start()

    def _expire_forever(self) -> None:
        while True:
            self.inventory.expire_due()
            due = self.inventory.next_expiry()
            wait = TIMER_TICK if due is None else min(TIMER_TICK, max(due - self.inventory.clock(), 0.0))
            if self._stop_timer.wait(wait):
                return

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host``:``port`` and start the expiry timer; return the service URL."""
        self.start_timer()
        return super().serve(host, port)

    def stop(self) -> None:
        """Stop serving and stop the timer."""
        self._stop_timer.set()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.join(5)
        super().stop()


def _status(reservation: Reservation) -> dict[str, str]:
    return {"reservationId": reservation.reservation_id, "state": reservation.state}


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).replace(microsecond=0).isoformat()
