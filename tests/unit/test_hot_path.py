"""The CRM-order route's faster paths give what the slower ones gave (issue 19's differential tests)."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import orjson
import pytest

from esb.exceptions import BodyTooLargeError
from esb.message import Message
from esb.project import Project
from esb.runtime.rawkeys import RawKeys
from esb.transforms.base import Transform
from esb.xmlsafe import forget_parsed, parse_xml, share_parsed, take_parsed
from simulators.crm import make_order
from simulators.siebel import siebel_order_xml

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "transforms" / "crm" / "samples"
ROUTE = "crm-order-to-iom"


def _orders() -> list[bytes]:
    """The repository's Siebel order samples and generated orders in every form the simulator writes."""
    found = [p.read_bytes() for p in sorted(SAMPLES.glob("order_*.xml")) if "dtd" not in p.name]
    found += [p.read_bytes() for p in sorted((SAMPLES / "eai").glob("*.xml"))]
    rng = random.Random(19)
    for index in range(40):
        order = make_order(index, rng)
        found.append(
            siebel_order_xml(order, encoding="GBK" if index % 2 else "UTF-8", attributes=index % 3 == 0)
        )
    return found


ORDERS = _orders()


@pytest.fixture(scope="module")
def project() -> Project:
    """The repository's own project (its routes and mappings)."""
    return Project.load(ROOT)


def _outcome(transform: Transform, body: bytes) -> bytes:
    """What the mapping makes of ``body``: its output as JSON, or the error's class and text."""
    try:
        return orjson.dumps(transform.transform_body(body), option=orjson.OPT_SORT_KEYS)
    except Exception as exc:  # the same refusal is the same outcome
        return f"{type(exc).__name__}: {exc}".encode()


def test_mapping_after_raw_keys_gives_what_a_fresh_parse_gives(project: Project) -> None:
    """The Siebel mapping on the tree the raw keys parsed gives the output (or error) of its own parse."""
    route = next(r for r in project.routes if r.id == ROUTE)
    raw_keys = RawKeys.for_route(route)
    siebel = project.transforms.get("crm/siebel_order_to_canonical")
    shared = 0
    for body in ORDERS:
        alone = _outcome(siebel, bytes(bytearray(body)))  # another bytes object: never a shared tree
        message = Message(body=body)
        raw_keys(message)
        shared += take_parsed(body) is not None  # the tree was offered ...
        message = Message(body=body)
        raw_keys(message)
        assert _outcome(siebel, body) == alone  # ... and the mapping gives the same on it
        assert take_parsed(body) is None  # taken once
    assert shared == len(ORDERS)


def test_a_shared_tree_is_taken_once_and_only_for_that_object() -> None:
    """take_parsed gives a shared tree to the same bytes object once, never to an equal copy."""
    body = ORDERS[0]
    root = parse_xml(body)
    share_parsed(body, root)
    assert take_parsed(bytes(bytearray(body))) is None
    assert take_parsed(body) is root
    assert take_parsed(body) is None


def test_a_shared_tree_stays_on_its_thread() -> None:
    """A tree shared on one thread is not seen by another."""
    body = ORDERS[0]
    share_parsed(body, parse_xml(body))
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(take_parsed(body)))
    thread.start()
    thread.join()
    assert seen == [None]
    forget_parsed()
    assert take_parsed(body) is None


def test_a_shared_tree_does_not_lift_the_mappings_size_limit(project: Project) -> None:
    """A body over the mapping's limit is refused even when the raw keys parsed it under theirs."""
    siebel = project.transforms.get("crm/siebel_order_to_canonical")
    body = ORDERS[0]
    share_parsed(body, parse_xml(body))
    limit = siebel.header.max_bytes
    siebel.header.max_bytes = len(body) - 1
    try:
        with pytest.raises(BodyTooLargeError):
            siebel.transform_body(body)
    finally:
        siebel.header.max_bytes = limit
        forget_parsed()
