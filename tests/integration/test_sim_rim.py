"""The simulated RIM over real SOAP on loopback, called through the hub's own SOAP client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.soap.sink import SOAPSink
from esb.exceptions import RemoteError
from simulators.rim import RIMSimulator
from simulators.rim_inventory import RIMInventory
from tests.integration.sim_clients import PASSWORD, PASSWORD_ENV, call, soap_client

WSDL = "config/contracts/rim/rim.wsdl"


class FakeClock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def inventory(clock: FakeClock | None = None) -> RIMInventory:
    """Three numbers in area 571, one in 574, two ports at HZ-XH serving one address."""
    inv = RIMInventory(clock or time.time)
    inv.add_numbers("571", ["13357100001", "13357100002", "13357100088"])
    inv.add_numbers("574", ["13357400001"])
    inv.add_ports("HZ-XH", ["HZ-XH-1/1/1", "HZ-XH-1/1/2"], ["文三路90号"])
    return inv


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock for expiry."""
    return FakeClock()


@pytest.fixture
def rim(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[tuple[RIMSimulator, str]]:
    """A simulated RIM on a free loopback port, its time on the fake clock."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    sim = RIMSimulator("esb", PASSWORD, inventory=inventory(clock), seed=7)
    url = sim.serve()
    yield sim, url
    sim.stop()


@pytest.fixture
def ops(rim: tuple[RIMSimulator, str], tmp_path: Path) -> Iterator[dict[str, SOAPSink]]:
    """One hub SOAP client per RIM operation."""
    _, url = rim
    names = ("ReserveResources", "ConfirmReservation", "ReleaseReservation", "QueryNumber")
    clients = {name: soap_client(tmp_path, WSDL, name, url) for name in names}
    yield clients
    for client in clients.values():
        client.close()


def reserve(ops: dict[str, SOAPSink], key: str, order: str = "O-1", **parts: Any) -> dict[str, Any]:
    """Call ReserveResources for ``order`` under ``key``."""
    body = {"idempotencyKey": key, "orderId": order, "componentId": "mobile", "expirySeconds": 60, **parts}
    return call(ops["ReserveResources"], body)


def number_state(ops: dict[str, SOAPSink], msisdn: str) -> str:
    """The number's state as QueryNumber answers it."""
    return str(call(ops["QueryNumber"], {"msisdn": msisdn})["state"])


def test_reserve_confirm_release_moves_the_number_through_its_states(ops: dict[str, SOAPSink]) -> None:
    """A number goes free -> pre-reserved -> occupied on confirm -> free on release, as QueryNumber says."""
    got = reserve(ops, "k1", number={"msisdn": "13357100002"})
    assert (got["msisdn"], got["state"]) == ("13357100002", "PRE_RESERVED")
    assert number_state(ops, "13357100002") == "PRE_RESERVED"
    confirmed = call(ops["ConfirmReservation"], {"reservationId": got["reservationId"]})
    assert confirmed == {"reservationId": got["reservationId"], "state": "CONFIRMED"}
    assert number_state(ops, "13357100002") == "OCCUPIED"
    released = call(ops["ReleaseReservation"], {"idempotencyKey": "k1"})
    assert released["state"] == "RELEASED"
    assert number_state(ops, "13357100002") == "FREE"


def test_query_number_names_the_order_holding_it(ops: dict[str, SOAPSink]) -> None:
    """QueryNumber of a held number gives its area, reservation and order."""
    got = reserve(ops, "k1", order="O-77", number={"areaCode": "574"})
    answer = call(ops["QueryNumber"], {"msisdn": got["msisdn"]})
    assert answer["areaCode"] == "574"
    assert (answer["reservationId"], answer["orderId"]) == (got["reservationId"], "O-77")


def test_pool_by_pattern_and_area_and_a_port_by_address(ops: dict[str, SOAPSink]) -> None:
    """A number is picked by area and pattern, a port by the exchange serving the address."""
    got = reserve(
        ops, "k1", number={"areaCode": "571", "pattern": "1335710*88"}, port={"address": "文三路90号"}
    )
    assert got["msisdn"] == "13357100088"
    assert (got["exchange"], got["portId"]) == ("HZ-XH", "HZ-XH-1/1/1")
    other = reserve(ops, "k2", port={"exchange": "HZ-XH"})
    assert other["portId"] == "HZ-XH-1/1/2"
    assert other.get("msisdn") is None


def test_same_key_returns_the_same_reservation(
    rim: tuple[RIMSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """A repeated ReserveResources with one key returns the first reservation; only one is ever made."""
    sim, _ = rim
    first = reserve(ops, "k-same", number={"areaCode": "571"})
    second = reserve(ops, "k-same", number={"areaCode": "571"})
    assert second["reservationId"] == first["reservationId"]
    assert second["msisdn"] == first["msisdn"]
    assert sim.inventory.made["k-same"] == 1
    assert len(sim.inventory.live_reservations("O-1")) == 1


def test_a_key_reused_for_another_order_is_refused(ops: dict[str, SOAPSink]) -> None:
    """A key already used for another order is a RIM-1006 fault, not a second reservation."""
    reserve(ops, "k1", number={"areaCode": "571"})
    with pytest.raises(RemoteError) as refused:
        reserve(ops, "k1", order="O-2", number={"areaCode": "571"})
    assert refused.value.code == "RIM-1006"


def test_an_exhausted_pool_and_a_taken_number_are_refused_with_their_codes(ops: dict[str, SOAPSink]) -> None:
    """No free number in the area is RIM-1001; a held number RIM-1002; a number not in the pool RIM-1007."""
    reserve(ops, "k1", number={"areaCode": "574"})
    with pytest.raises(RemoteError) as none_left:
        reserve(ops, "k2", number={"areaCode": "574"})
    assert none_left.value.code == "RIM-1001"
    assert "no number available" in str(none_left.value.detail["errorMessage"])
    with pytest.raises(RemoteError) as taken:
        reserve(ops, "k3", number={"msisdn": "13357400001"})
    assert taken.value.code == "RIM-1002"
    with pytest.raises(RemoteError) as unknown:
        reserve(ops, "k4", number={"msisdn": "13399999999"})
    assert unknown.value.code == "RIM-1007"


def test_a_port_refused_holds_no_number_either(
    rim: tuple[RIMSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """A reservation whose port cannot be had is refused whole: its number stays free."""
    sim, _ = rim
    with pytest.raises(RemoteError) as refused:
        reserve(ops, "k1", number={"msisdn": "13357100001"}, port={"address": "nowhere 1"})
    assert refused.value.code == "RIM-1003"
    assert number_state(ops, "13357100001") == "FREE"
    assert sim.inventory.live_reservations() == []


def test_expiry_returns_a_pre_reserved_number_to_the_pool(
    rim: tuple[RIMSimulator, str], ops: dict[str, SOAPSink], clock: FakeClock
) -> None:
    """When its time passes the timer expires the reservation: the number is free, confirm is refused."""
    sim, _ = rim
    got = reserve(ops, "k1", number={"msisdn": "13357100001"})
    clock.now += 61
    deadline = time.monotonic() + 10
    while number_state(ops, "13357100001") != "FREE" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert number_state(ops, "13357100001") == "FREE"
    assert sim.inventory.reservations[got["reservationId"]].state == "EXPIRED"
    with pytest.raises(RemoteError) as late:
        call(ops["ConfirmReservation"], {"reservationId": got["reservationId"]})
    assert late.value.code == "RIM-1005"
    assert call(ops["ReleaseReservation"], {"reservationId": got["reservationId"]})["state"] == "EXPIRED"


def test_a_confirmed_reservation_does_not_expire(
    rim: tuple[RIMSimulator, str], ops: dict[str, SOAPSink], clock: FakeClock
) -> None:
    """Confirmed (实占) resources stay occupied past the reservation's expiry."""
    sim, _ = rim
    got = reserve(ops, "k1", number={"msisdn": "13357100001"})
    call(ops["ConfirmReservation"], {"idempotencyKey": "k1"})
    clock.now += 3600
    assert sim.inventory.expire_due() == []
    assert number_state(ops, "13357100001") == "OCCUPIED"
    assert [r.reservation_id for r in sim.inventory.live_reservations("O-1")] == [got["reservationId"]]


def test_release_is_idempotent_and_an_unknown_reservation_is_a_fault(ops: dict[str, SOAPSink]) -> None:
    """Releasing twice answers RELEASED twice; an unknown id is RIM-1004."""
    got = reserve(ops, "k1", number={"areaCode": "571"})
    for _ in range(2):
        assert call(ops["ReleaseReservation"], {"reservationId": got["reservationId"]})["state"] == "RELEASED"
    with pytest.raises(RemoteError) as unknown:
        call(ops["ReleaseReservation"], {"reservationId": "R-nope"})
    assert unknown.value.code == "RIM-1004"


def test_refuse_all_refuses_new_reservations_but_not_a_repeat(
    rim: tuple[RIMSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """With refuse_all every new reservation is RIM-1001; a repeat of one made before still returns it."""
    sim, _ = rim
    first = reserve(ops, "k1", number={"areaCode": "571"})
    sim.refuse_all = True
    with pytest.raises(RemoteError) as refused:
        reserve(ops, "k2", number={"areaCode": "571"})
    assert (refused.value.code, refused.value.retryable) == ("RIM-1001", False)
    assert reserve(ops, "k1", number={"areaCode": "571"})["reservationId"] == first["reservationId"]
    assert sim.refused == 1


def test_a_refusal_rate_refuses_about_that_share(
    rim: tuple[RIMSimulator, str], ops: dict[str, SOAPSink]
) -> None:
    """refusal_rate 0.5 refuses some of 20 requests and grants others; each refusal RIM-1001, nothing held."""
    sim, _ = rim
    sim.inventory.add_numbers("575", (f"1335750{n:04d}" for n in range(20)))
    sim.refusal_rate = 0.5
    outcomes = []
    for n in range(20):
        try:
            reserve(ops, f"r{n}", order=f"O-{n}", number={"areaCode": "575"})
            outcomes.append("granted")
        except RemoteError as exc:
            outcomes.append(exc.code or "")
    assert set(outcomes) == {"granted", "RIM-1001"}
    assert len(sim.inventory.live_reservations()) == outcomes.count("granted")


def test_busy_is_a_retryable_fault(rim: tuple[RIMSimulator, str], tmp_path: Path) -> None:
    """busy_next answers RIM-0503, which the endpoint's retryable_faults makes retryable."""
    sim, url = rim
    sim.busy_next()
    with soap_client(tmp_path, WSDL, "QueryNumber", url, retryable_faults=["RIM-0503"]) as client:
        with pytest.raises(RemoteError) as busy:
            call(client, {"msisdn": "13357100001"})
        assert (busy.value.code, busy.value.retryable) == ("RIM-0503", True)
        assert call(client, {"msisdn": "13357100001"})["state"] == "FREE"


def test_a_request_for_nothing_is_a_bad_request(ops: dict[str, SOAPSink]) -> None:
    """A reservation asking for neither a number nor a port is RIM-0400 saying what was expected."""
    with pytest.raises(RemoteError) as bad:
        reserve(ops, "k1")
    assert bad.value.code == "RIM-0400"
    assert "expected a number and/or a port" in str(bad.value.detail["errorMessage"])
