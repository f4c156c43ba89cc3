"""The simulated RIM's pools and reservations, without SOAP: states, expiry on a moved clock, refusals."""

from __future__ import annotations

import pytest

from simulators.rim import default_inventory
from simulators.rim_inventory import RIMInventory
from simulators.soap_service import ServiceFault


class Clock:
    """A clock the test moves."""

    now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock) -> RIMInventory:
    """Two numbers of area 571 and one port."""
    inv = RIMInventory(clock)
    inv.add_numbers("571", ["13357100001", "13357100002"])
    inv.add_ports("HZ-XH", ["P1"])
    return inv


def test_expire_due_frees_only_what_is_past_its_time() -> None:
    """Of two pre-reservations only the one whose expiry passed is expired and its number freed."""
    clock = Clock()
    inv = make(clock)
    short = inv.reserve("a", "O-1", "m", 10, {"number": {"msisdn": "13357100001"}})
    inv.reserve("b", "O-2", "m", 100, {"number": {"msisdn": "13357100002"}})
    assert inv.next_expiry() == 1010.0
    clock.now = 1010.0
    assert [r.reservation_id for r in inv.expire_due()] == [short.reservation_id]
    assert inv.number("13357100001").state == "FREE"
    assert inv.number("13357100002").state == "PRE_RESERVED"
    assert [r.order_id for r in inv.live_reservations()] == ["O-2"]


def test_confirm_twice_is_no_change_and_release_returns_the_port() -> None:
    """Confirming twice keeps CONFIRMED; releasing a confirmed reservation frees its port."""
    inv = make(Clock())
    held = inv.reserve("a", "O-1", "bb", 10, {"port": {"exchange": "HZ-XH"}})
    assert inv.confirm(key="a").state == "CONFIRMED"
    assert inv.confirm(held.reservation_id).state == "CONFIRMED"
    assert inv.ports["P1"].state == "OCCUPIED"
    inv.release(held.reservation_id)
    assert inv.ports["P1"].state == "FREE"
    assert inv.live_reservations("O-1") == []


@pytest.mark.parametrize(
    ("parts", "code", "says"),
    [
        pytest.param({"number": {"pattern": "13a*"}}, "RIM-0400", "expected digits", id="bad-pattern"),
        pytest.param({"number": {"pattern": "139*"}}, "RIM-1001", "no number available", id="no-match"),
        pytest.param({"port": {}}, "RIM-0400", "exchange or an address", id="port-without-place"),
        pytest.param({"port": {"exchange": "NB-HS"}}, "RIM-1003", "no free port", id="no-port"),
        pytest.param({}, "RIM-0400", "a number and/or a port", id="nothing"),
    ],
)
def test_refusals_say_what_was_expected(parts: dict[str, dict[str, str]], code: str, says: str) -> None:
    """Each refused reservation is a fault with its code and a text saying what was expected or missing."""
    inv = make(Clock())
    with pytest.raises(ServiceFault) as refused:
        inv.reserve("a", "O-1", "m", 10, parts)
    assert refused.value.code == code
    assert says in refused.value.text
    assert inv.live_reservations() == []


def test_the_default_pools_serve_both_areas_and_their_addresses() -> None:
    """The pools `make run` uses hold numbers in 571 and 574 and a port at each listed address's exchange."""
    inv = default_inventory(Clock())
    held = inv.reserve(
        "a",
        "O-1",
        "bundle",
        60,
        {"number": {"areaCode": "574"}, "port": {"address": "浙江省杭州市西湖区文三路90号"}},
    )
    assert held.msisdn is not None
    assert held.msisdn.startswith("1335740")
    assert held.exchange == "HZ-XH"
