"""The CRM-order route's faster paths give what the slower ones gave (issue 19's differential tests)."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from esb.config.routes import RawKey
from esb.exceptions import BodyTooLargeError, MessageError
from esb.message import Message
from esb.project import Project
from esb.runtime.rawkeys import RawKeys
from esb.transforms import dates, functions, money, testrun
from esb.transforms.base import Transform
from esb.transforms.kinds import RuleTransform
from esb.transforms.siebelmsg import SiebelTransform
from esb.transforms.xpathdialect import children
from esb.xmlsafe import forget_parsed, parse_xml, share_parsed, take_parsed
from simulators.crm import make_order
from simulators.directory_scenario import plan_subscribers, subscriber_xml
from simulators.process_orders import cancel_xml
from simulators.siebel import siebel_order_xml
from tests.unit.mapping_fixture import make_mapping_project

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


def _outcome(transform: Transform, body: Any) -> bytes:
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


def _rule_transforms(transform: Transform) -> list[RuleTransform]:
    """The rule sets a transform runs: itself, or a Siebel mapping's variants."""
    if isinstance(transform, SiebelTransform):
        return list(transform.variants.values())
    return [transform] if isinstance(transform, RuleTransform) and transform.block is not None else []


@contextmanager
def _reference(transforms: list[Transform]) -> Iterator[None]:
    """Run ``transforms`` through the rule runner (the interpreted reference) instead of their plans."""
    saved = []
    for transform in transforms:
        for rules in _rule_transforms(transform):
            saved.append((rules, rules.plan))
            block, runner = rules.block, rules.runner
            assert block is not None
            rules.plan = lambda node, loc, scope, b=block, r=runner: r.block(b, node, loc, scope)
    try:
        yield
    finally:
        for rules, plan in saved:
            rules.plan = plan


def _broken(body: bytes) -> list[bytes]:
    """Orders made wrong in the ways a mapping refuses: bad date, bad number, unknown code, missing id."""
    swaps = [
        (b"<Order_spcDate>", b"<Order_spcDate>31/31/2026 99:00:00 "),
        (b"<Quantity>", b"<Quantity>many"),
        (b"<Net_spcPrice>", b"<Net_spcPrice>12.3.4"),
        (b"<Action_spcCode>", b"<Action_spcCode>Explode"),
        (b"<Line_spcNumber>", b"<Line_spcNumber_gone>"),
    ]
    out = []
    for old, new in swaps:
        if old in body:
            changed = body.replace(old, new, 1)
            if new.endswith(b"_gone>"):
                changed = changed.replace(b"</Line_spcNumber>", b"</Line_spcNumber_gone>", 1)
            out.append(changed)
    return out


def test_compiled_rules_give_the_runners_outputs_and_errors_on_orders(project: Project) -> None:
    """The Siebel and IOM mappings' compiled rules give the runner's outputs and errors, order by order."""
    siebel = project.transforms.get("crm/siebel_order_to_canonical")
    iom = project.transforms.get("iom/canonical_to_order_request")
    bodies = [b for body in ORDERS for b in (body, *_broken(body))]
    assert len(bodies) > 2 * len(ORDERS)

    def outcomes() -> list[bytes]:
        found = []
        for body in bodies:
            found.append(_outcome(siebel, body))
            try:
                canonical = siebel.transform_body(body)
            except Exception:
                continue
            found.append(_outcome(iom, orjson.dumps(canonical)))
        return found

    compiled = outcomes()
    with _reference([siebel, iom]):
        reference = outcomes()
    assert compiled == reference
    assert any(o.startswith(b"MappingError") for o in compiled)  # the error paths were exercised


def test_compiled_rules_give_the_runners_outcome_for_every_mapping_test_case(project: Project) -> None:
    """Every case of every rule mapping's _test.yaml: the compiled rules and the runner agree."""
    compared = 0
    for path in testrun.find_test_files(ROOT / "transforms"):
        if "tables" in path.parts:  # decision tables' tests (esb/decision), not mappings'
            continue
        test_file = testrun.TestFile(path, project.transforms)
        transform = project.transforms.get(test_file.transform_name)
        if not _rule_transforms(transform):
            continue
        for case in test_file.cases:
            body = test_file._input(case)
            compiled = _outcome(transform, body)
            with _reference([transform]):
                assert _outcome(transform, body) == compiled, (path.name, case.get("name"))
            compared += 1
    assert compared > 50


#: The route's MSISDN key as it was written before it was made faster (the reference).
OLD_MSISDN_XPATH = "(//*[Name='MSISDN']/Value | //*[@Name='MSISDN']/@Value)[1]"
OLD_ORDER_XPATH = (
    "(//SiebelMessage//@{Order Number} | //SiebelMessage//{Order Number} | //SiebelMessage//@OrderNumber"
    " | //SiebelMessage//OrderNumber)[1]"
)


END = b"</SiebelMessage>"


def _wrapped(body: bytes) -> list[bytes]:
    """``body``, and variants that move the keys: inside a PropertySet, the order number as an attribute
    of the SiebelMessage itself, a SiebelMessage nested in another element, no SiebelMessage at all."""
    head, sep, rest = body.partition(b"<SiebelMessage")
    if not sep:
        return [body]
    return [
        body,
        head + b"<PropertySet>" + sep + rest + b"</PropertySet>",
        head + sep + b' OrderNumber="SM-1"' + rest,
        head + b"<Outer><Other OrderNumber='X-0'/>" + sep + rest.replace(END, END + b"</Outer>"),
        head + b"<NotSiebel" + rest.replace(END, b"</NotSiebel>"),
    ]


def _keys_found(
    project: Project, route_id: str, former: dict[str, RawKey], bodies: list[bytes]
) -> dict[str, int]:
    """Read ``bodies`` with ``route_id``'s raw keys and with ``former``: the same keys in each body
    (asserted); return how many bodies had each key."""
    route = next(r for r in project.routes if r.id == route_id)
    current, reference = RawKeys.for_route(route), RawKeys(route_id, former)
    found = dict.fromkeys(former, 0)
    for body in bodies:
        ours, theirs = Message(body=body), Message(body=body)
        current(ours)
        reference(theirs)
        forget_parsed()
        assert ours.business_keys == theirs.business_keys, (route_id, body[:200])
        for name in found:
            found[name] += name in ours.business_keys
    return found


def test_the_routes_raw_keys_read_what_their_former_xpaths_read(project: Project) -> None:
    """crm-order-to-iom's raw order id and MSISDN keys find, order by order (and in the order wrapped,
    nested or renamed), what the former XPaths (// spelt, MSISDN from the Value's parent) found."""
    former = {
        "order_id": RawKey(xpath=OLD_ORDER_XPATH, tag_escape="siebel"),
        "msisdn": RawKey(xpath=OLD_MSISDN_XPATH),
    }
    bodies = [variant for body in ORDERS for variant in _wrapped(body)]
    found = _keys_found(project, ROUTE, former, bodies)
    assert found["order_id"] > len(bodies) * 3 // 4
    assert found["msisdn"] > len(bodies) // 2


def _cancels() -> list[bytes]:
    """The cancel request sample and the simulator's cancel requests (order numbers of every shape)."""
    found = [(SAMPLES / "order_cancel.xml").read_bytes()]
    rng = random.Random(25)
    for index in range(20):
        number = f"SO{rng.randrange(10**12):012d}" if index % 4 else f"1-{index}X<&>"
        found.append(cancel_xml(f"1-{index:05d}", number.replace("<&>", "&lt;&amp;&gt;"), f"1-A{index}"))
    return found


def test_the_cancel_routes_order_id_spelt_as_the_order_routes_reads_what_its_former_xpath_read(
    project: Project,
) -> None:
    """crm-cancel-to-hub's raw order id (the descendant-axis spelling of crm-order-to-iom) finds, in cancel
    requests and orders (wrapped, nested or renamed), what its former ``//`` XPath found."""
    cancel = next(r for r in project.routes if r.id == "crm-cancel-to-hub")
    order = next(r for r in project.routes if r.id == ROUTE)
    assert cancel.raw_business_keys["order_id"] == order.raw_business_keys["order_id"]  # one spelling
    bodies = [variant for body in _cancels() + ORDERS for variant in _wrapped(body)]
    former = {"order_id": RawKey(xpath=OLD_ORDER_XPATH, tag_escape="siebel")}
    found = _keys_found(project, "crm-cancel-to-hub", former, bodies)
    assert found["order_id"] > len(bodies) * 3 // 4


#: crm-subscriber-to-hub's raw MSISDN as it was written before it was spelt without ``//`` (the reference).
OLD_SERIAL_XPATH = (
    "(//SiebelMessage//@{Serial Number} | //SiebelMessage//{Serial Number}"
    " | //SiebelMessage//@SerialNumber)[1]"
)


def _subscribers() -> list[bytes]:
    """The subscriber sample, the directory scenario's subscribers, and the number as an attribute."""
    found = [(SAMPLES / "subscriber_listed.xml").read_bytes()]
    found += [subscriber_xml(sub) for sub in plan_subscribers(12, "hot")]
    found += [body.replace(b"<Asset>", b'<Asset SerialNumber="13900000001">', 1) for body in found[:3]]
    return found


def test_the_subscriber_routes_msisdn_reads_what_its_former_xpath_read(project: Project) -> None:
    """crm-subscriber-to-hub's raw MSISDN (spelt as the order id, without ``//``) finds, in subscribers
    and orders (wrapped, nested or renamed), what its former ``//`` XPath found."""
    bodies = [variant for body in _subscribers() + ORDERS for variant in _wrapped(body)]
    former = {"msisdn": RawKey(xpath=OLD_SERIAL_XPATH, tag_escape="siebel")}
    found = _keys_found(project, "crm-subscriber-to-hub", former, bodies)
    assert found["msisdn"] > len(_subscribers()) * 3


def _full_message() -> Message:
    """A message with every field set to something other than its default."""
    return Message(
        body={"a": 1},
        id="m-1",
        correlation_id="c-1",
        causation_id="p-1",
        type="order.submitted",
        source="crm",
        schema="product_order.v1",
        headers={"priority": "high"},
        created_at=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        attempt=3,
        business_keys={"order_id": "SO1"},
    )


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"body": None}, id="body-none"),
        pytest.param({"attempt": 1, "headers": {}}, id="attempt-headers"),
        pytest.param({"schema": None, "type": "x"}, id="schema-type"),
        pytest.param({"id": "m-2", "correlation_id": ""}, id="new-id-empty-correlation"),
        *(
            pytest.param({f.name: "changed"}, id=f"only-{f.name}")
            for f in dataclasses.fields(Message)
            if f.init  # not the serialisation cache
        ),
    ],
)
def test_message_replace_is_dataclasses_replace(changes: dict[str, Any]) -> None:
    """Message.replace gives what dataclasses.replace gives, field by field."""
    message = _full_message()
    assert message.replace(**changes) == dataclasses.replace(message, **changes)


def test_message_replace_refuses_an_unknown_field() -> None:
    """Message.replace refuses a name that is not a field, as dataclasses.replace does."""
    with pytest.raises(TypeError, match="colour"):
        _full_message().replace(colour="red")


def test_the_children_index_finds_what_iterchildren_finds() -> None:
    """children() gives, per tag, the first child iterchildren(tag) gives: no namespaced, comment or PI."""
    root = parse_xml(
        b'<a xmlns:n="urn:x"><!--c--><n:Id>ns</n:Id><?pi x?><Id>first</Id><Id>second</Id>'
        b"<Name><b>deep</b></Name></a>"
    )
    kids = children(root)
    for tag in ("Id", "Name", "n:Id", "{urn:x}Id", "Missing", "b"):
        assert kids.get(tag) is next(root.iterchildren(tag), None)
    assert kids["{urn:x}Id"].text == "ns"
    assert kids["Id"].text == "first"
    assert set(kids) == {"Id", "Name", "{urn:x}Id"}


FIELDS_ON_TEXT = """
kind: xpath-to-json
input: xml
output: json
rules:
  items:
    foreach: "//Item/text()"
    rules:
      id: {field: Id}
      name: {field: Name}
"""


def test_fields_on_a_node_that_is_not_an_element_fail_as_the_runner_fails(tmp_path: Path) -> None:
    """A foreach selecting text, not elements: the compiled fields raise the runner's MappingError."""
    mapping = make_mapping_project(tmp_path, {"t/text_items": FIELDS_ON_TEXT}).transforms.get("t/text_items")
    body = b"<Order><Item>one</Item></Order>"
    compiled = _outcome(mapping, body)
    with _reference([mapping]):
        assert _outcome(mapping, body) == compiled
    assert compiled.startswith(b"MappingError")


def _counting_fallbacks(transforms: list[Transform]) -> list[int]:
    """Count, in the returned one-item list, the blocks the compiled rules hand back to the runner."""
    count = [0]
    for transform in transforms:
        for rules in _rule_transforms(transform):
            runner = rules.runner

            def block(*args: Any, _block: Any = runner.block) -> Any:
                count[0] += 1
                return _block(*args)

            runner.block = block  # type: ignore[method-assign,assignment]
    return count


def test_valid_orders_are_mapped_without_the_runner(project: Project) -> None:
    """Orders both mappings accept never fall back to the interpreter; broken ones do (and fail)."""
    siebel = project.transforms.get("crm/siebel_order_to_canonical")
    iom = project.transforms.get("iom/canonical_to_order_request")
    count = _counting_fallbacks([siebel, iom])
    try:
        mapped = 0
        for body in ORDERS:
            before = count[0]
            try:
                canonical = siebel.transform_body(body)
            except Exception:
                continue
            iom.transform_body(orjson.dumps(canonical))
            assert count[0] == before, body[:200]
            mapped += 1
        assert mapped > len(ORDERS) // 2
        broken = [b for body in ORDERS for b in _broken(body)]
        for body in broken:
            with pytest.raises(MessageError):  # which one is the differential tests' job
                siebel.transform_body(body)
        assert count[0] >= len(broken)
    finally:
        for transform in (siebel, iom):
            for rules in _rule_transforms(transform):
                del rules.runner.block  # back to the class's method


SHAPES = """
kind: xpath-to-json
input: xml
output: json
let:
  unit: {field: Unit, default: CNY}
  flag: {from: "@flag"}
rules:
  kind: {value: {nested: [1, 2]}}
  fallback: {field: Missing, default: {empty: []}}
  first: {from: [Missing, "@Alt", Name], fn: [trim]}
  counted: {from: "count(Item)"}
  joined: {from: "Item/Name", all: true, fn: [{join: "/"}]}
  guarded: {value: yes, when: "Item[2]"}
  unit_copy: {value: $unit}
  flag_copy: {value: $flag, default: none}
  price: {field: Price, fn: [{money: $unit}]}
  deep[1].list[0].name: {field: Name}
  deep[1].list[0].other: {value: x}
  a.b.c: {field: Name, fn: [upper]}
  "[0]": {value: zero}
  rows:
    foreach: Item
    omit_empty: true
    let:
      row_unit: {field: Unit, default: $unit}
    rules:
      n: {field: Name, required: true}
      unit: {value: $row_unit}
      qty: {field: Qty, default: "1", fn: [integer]}
      tags:
        foreach: Tag
        rules:
          t: {from: ".", fn: [clean]}
  none:
    foreach: Nothing
    rules:
      x: {field: X}
"""

SHAPE_BODIES = [
    b'<R flag="f" Alt=" alt "><Name>n</Name><Price>1,250.5</Price><Item><Name>a</Name><Qty>2</Qty>'
    b"<Tag>\xef\xbc\xa1 b</Tag><Tag/></Item><Item Name='b' Unit='JPY'/></R>",
    b"<R><Name> plain </Name><Unit>JPY</Unit><Price>12</Price></R>",
    b"<R><Item><Qty>2</Qty></Item></R>",  # a row without its required name
    b"<R><Price>1.2.3</Price></R>",  # not an amount
    b"<R><Unit>XXX</Unit><Price>1</Price></R>",  # not a currency
    b"<R><Item><Name>a</Name><Qty>2.5</Qty></Item></R>",  # not a whole number
    b"<R><Name><b>mixed</b> text</Name><Item Name=''><Name>c</Name></Item></R>",
]


def test_every_rule_shape_gives_the_runners_outcome(tmp_path: Path) -> None:
    """Constants, objects as literals and defaults, several sources, when, variables, mixed paths,
    nested foreach: the compiled rules give the runner's outputs and errors, and fresh literal objects."""
    mapping = make_mapping_project(tmp_path, {"t/shapes": SHAPES}).transforms.get("t/shapes")
    compiled = [_outcome(mapping, body) for body in SHAPE_BODIES]
    with _reference([mapping]):
        assert [_outcome(mapping, body) for body in SHAPE_BODIES] == compiled
    assert sum(o.startswith(b"MappingError") for o in compiled) == 4
    first, second = (mapping.transform_body(SHAPE_BODIES[1]) for _ in range(2))
    first["kind"]["nested"].append(3)
    first["fallback"]["empty"].append(1)
    assert second["kind"] == {"nested": [1, 2]}
    assert second["fallback"] == {"empty": []}
    count = _counting_fallbacks([mapping])
    for body in (SHAPE_BODIES[0], SHAPE_BODIES[1], SHAPE_BODIES[-1]):  # the accepted ones
        mapping.transform_body(body)
    assert count == [0]


REPLACED = """
kind: xpath-to-json
input: xml
output: json
rules:
  x.y: {field: A}
  x.list[1].n: {field: B}
  x: {value: {z: 1}, when: {field: C}}
  x.w: {field: B}
  x.list[1].m: {field: A}
  kept.a: {field: A}
  kept.b: {field: B}
  kept.c: {value: 3}
  item:
    foreach: Item
    rules:
      p[0].q: {field: A}
      p[0].r: {field: B}
      p[2]: {value: last}
"""
REPLACED_BODIES = [
    b"<R><A>a</A><B>b</B><C>c</C><Item><A>1</A></Item><Item B='2'/></R>",
    b"<R><A>a</A><B>b</B><Item/></R>",
    b"<R C='c'><B>b</B></R>",
    b"<R/>",
]


def test_objects_a_later_rule_replaces_are_not_kept_between_rules(tmp_path: Path) -> None:
    """A rule setting an object that other rules write into (x after x.y) gives the runner's output:
    the compiled block does not keep the replaced object; unrelated paths (kept.*) are unaffected."""
    mapping = make_mapping_project(tmp_path, {"t/replaced": REPLACED}).transforms.get("t/replaced")
    compiled = [_outcome(mapping, body) for body in REPLACED_BODIES]
    with _reference([mapping]):
        assert [_outcome(mapping, body) for body in REPLACED_BODIES] == compiled
    first = mapping.transform_body(REPLACED_BODIES[0])
    assert first["x"] == {"z": 1, "w": "b", "list": [None, {"m": "a"}]}
    assert first["kept"] == {"a": "a", "b": "b", "c": 3}
    assert first["item"] == [{"p": [{"q": "1"}, None, "last"]}, {"p": [{"r": "2"}, None, "last"]}]

def _result(func: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    """What a call gives: its value's type and repr, or its error's type and text."""
    try:
        value = func(*args, **kwargs)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return type(value).__name__, repr(value)


def _clean_before(value: Any) -> str | None:
    """``clean`` as it was before its fast path (the reference)."""
    return " ".join(functions.halfwidth(value).split()) or None


def _integer_before(value: Any) -> int:
    """``integer`` as it was before its fast path (the reference)."""
    number = functions._number(value)
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def _money_before(value: Any, currency: Any = "CNY", rounding: str | None = None) -> str:
    """``money`` as it was before its fast path (the reference)."""
    return money._split(value, currency).quantize(rounding).to_json()["value"]


def _to_minor_before(value: Any, currency: Any = None, exact: bool = True) -> int:
    """``to_minor`` as it was before its fast path (the reference)."""
    amount = money._split(value, currency)
    rounded = amount.quantize()
    if exact and rounded.amount != amount.amount:
        raise ValueError(f"{amount} has more decimals than {amount.currency} allows ({amount.minor_units})")
    return int(rounded.amount.scaleb(rounded.minor_units))


def _iso_datetime_before(value: Any, format: Any = None, tz: str = "UTC", to: str | None = None) -> str:
    """``datetime`` as it was before its fast path (the reference)."""
    parsed = dates.parse_datetime(value, format, tz)
    return (parsed.astimezone(dates.zone(to)) if to else parsed).isoformat()


TEXTS: list[Any] = [
    "plain", "  two  words ", "", " ", "\u3000", "全角\u3000空格", "ＡＢＣ１２３", "5G畅享套餐129元",
    "ｅＳＩＭ",
    "tab\tand\nline", "\u00a0nbsp", "٣", "²", "12", "007", " 12 ", "-3", "+3", "1.0", "2.5", "1e3", "abc",
    "NaN", "Infinity", "1,250.00", "¥1,250.00", "1.005", "12.3.4", "0", 0, 7, -2, True, 1.5, Decimal("3.00"),
]  # fmt: skip
AMOUNTS: list[Any] = ["129.00", "12.5", "¥1,250.00", "1.005", "0.125", "-0.5", " 12 ", "1e5", "", "abc",
                      "NaN", "12.3.4", "99999999999999999999999999999.99", 5, Decimal("1.2"), 1.5, None, True,
                      # money's exact form: as it is, or not quite (zeros, signs, digits, decimals, size)
                      "0.00", "0", "00.50", "007.00", "10.50", "199", "199.000", "199.0", "-0.00", "+1.00",
                      "\u0661\u0662.\u0660\u0660", "12.50 ", "1234567890123456789012.00",
                      "123456789012345678901.00", "123456789012345678901", "1234567890123456789012345678.00"]
CURRENCIES: list[Any] = ["CNY", "JPY", "KWD", " cny", "cny", "XXX", None, 5]
DATES = ["11/25/2026 23:30:00", "03/08/2026 02:30:00", "11/01/2026 01:30:00", "01/01/0999 00:00:00",
         "01/01/0000 00:00:00", "1/1/1900 0:0:0", " 1/2/2026 3:04:05 ", "02/30/2026 10:00:00",
         "13/01/2026 00:00:00",
         "11/25/2026 24:00:00", "11/25/2026 23:30", "2026-11-25T23:30:00+08:00", "garbage", "",
         "3/8/2026 02:30:00"]


def test_clean_and_integer_give_what_they_gave_before_their_fast_paths() -> None:
    """clean and integer agree with their former code on texts, numbers and refusals alike."""
    for value in TEXTS:
        assert _result(functions.clean, value) == _result(_clean_before, value), value
        assert _result(functions.integer, value) == _result(_integer_before, value), value


def test_money_functions_give_what_they_gave_before_their_fast_paths() -> None:
    """money and to_minor agree with their former code on amounts, currencies, roundings and refusals."""
    for value in [*AMOUNTS, *TEXTS]:
        for currency in CURRENCIES:
            for rounding in (None, "ROUND_DOWN", "ROUND_BOGUS"):
                expected = _result(_money_before, value, currency, rounding)
                assert _result(money.money, value, currency, rounding) == expected, (value, currency)
            doc = {"unit": currency, "value": value}
            for exact in (True, False):
                expected = _result(_to_minor_before, doc, None, exact)
                assert _result(money.to_minor, doc, None, exact) == expected, (doc, exact)
                expected = _result(_to_minor_before, {"value": value}, currency, exact)
                assert _result(money.to_minor, {"value": value}, currency, exact) == expected
    assert _result(money.to_minor, {"unit": "CNY"}) == _result(_to_minor_before, {"unit": "CNY"})


def _format_datetime_before(value: Any, format: str = "%Y%m%d%H%M%S", tz: str = "UTC",
                            source_format: str | None = None) -> str:
    """``format_datetime`` as it was before its fast path (the reference)."""
    return dates.parse_datetime(value, source_format, "UTC").astimezone(dates.zone(tz)).strftime(format)


#: Canonical (ISO 8601) dates and others format_datetime meets: offsets, Z, naive, basic form, old years.
ISO_DATES = ["2026-11-25T14:03:00+08:00", "2026-12-31T17:30:00Z", " 2026-11-25T14:03:00 ", "2026-11-25",
             "20261125T140300", "20261125140300", "0999-06-01T00:00:00+00:00", "1000-01-01T00:00:00+08:00",
             "2026-11-25T14:03:00.123456-05:00", "2026-13-01T00:00:00Z", "2026-11-25T14:03:00z"]


def test_format_datetime_gives_what_it_gave_before_its_fast_path() -> None:
    """format_datetime agrees with its former code on ISO dates, Siebel dates, formats, zones and refusals."""
    for value in [*ISO_DATES, *DATES, *TEXTS, datetime(2026, 12, 7, tzinfo=UTC)]:
        for tz in ZONES:
            for fmt in ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M"):
                expected = _result(_format_datetime_before, value, fmt, tz)
                assert _result(dates.format_datetime, value, fmt, tz) == expected, (value, fmt, tz)
            expected = _result(_format_datetime_before, value, "%Y%m%d%H%M%S", tz, "%m/%d/%Y %H:%M:%S")
            assert _result(dates.format_datetime, value, "%Y%m%d%H%M%S", tz, "%m/%d/%Y %H:%M:%S") == expected


#: Zones with and without summer time, a quarter-hour offset, and one whose 1900 offset has seconds.
ZONES = ("Asia/Shanghai", "UTC", "America/New_York", "Asia/Kathmandu", "Africa/Monrovia", "Nowhere/Zone")


def test_dates_give_what_they_gave_before_their_fast_path() -> None:
    """The datetime function agrees with its former code on Siebel dates, others and refusals."""
    for value in [*DATES, *TEXTS]:
        for tz in ZONES:
            for to in (None, "UTC"):
                expected = _result(_iso_datetime_before, value, None, tz, to)
                assert _result(dates.iso_datetime, value, None, tz, to) == expected, (value, tz, to)
        fmt = "%m/%d/%Y %H:%M:%S"
        assert _result(dates.iso_datetime, value, fmt) == _result(_iso_datetime_before, value, fmt)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"a": 1, "b": [1.5, None, True, "文字"]}, id="plain"),
        pytest.param({1: "one", "n": {2: [3]}}, id="int-keys"),
        pytest.param({(1, 2): "tuple key"}, id="unsupported-key"),
        pytest.param({"d": Decimal("1.5")}, id="unsupported-value"),
        pytest.param({"d": datetime(2026, 12, 7, tzinfo=UTC)}, id="datetime"),
        pytest.param([{"x": {True: 1}}], id="list"),
    ],
)
def test_body_bytes_gives_what_the_non_string_keys_option_gives(body: Any) -> None:
    """Message.body_bytes writes what orjson with OPT_NON_STR_KEYS writes, and fails as it fails."""
    expected = _result(orjson.dumps, body, option=orjson.OPT_NON_STR_KEYS)
    assert _result(Message(body=body).body_bytes) == expected


def test_body_bytes_of_the_routes_bodies_is_the_non_string_keys_options(project: Project) -> None:
    """The canonical orders and IOM requests of the repository's orders serialise as before."""
    siebel = project.transforms.get("crm/siebel_order_to_canonical")
    iom = project.transforms.get("iom/canonical_to_order_request")
    compared = 0
    for body in ORDERS:
        try:
            canonical = siebel.transform_body(body)
        except MessageError:  # a sample made to be refused
            continue
        for doc in (canonical, iom.transform_body(orjson.dumps(canonical))):
            assert Message(body=doc).body_bytes() == orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
            compared += 1
    assert compared > len(ORDERS)


DOTTED = """
kind: jmespath
input: json
output: json
rules:
  two: a.b
  three: {from: a.b.c, default: none}
  needed: {from: x.y, required: true}
  items:
    foreach: rows
    rules:
      id: offer.id
      name: {from: offer.detail.name, fn: [upper]}
"""
#: Bodies where a dotted name meets every kind of value on its way: objects, null, lists, strings, numbers,
#: blanks, a missing key, a required one missing, a list where the whole body should be an object.
DOTTED_BODIES: list[Any] = [
    {"a": {"b": 1}, "x": {"y": "ok"}},
    {"a": {"b": {"c": "deep"}}, "x": {"y": 0}},
    {"a": {"b": ""}, "x": {"y": False}},
    {"a": None, "x": {"y": []}},
    {"a": [{"b": 1}], "x": {"y": "ok"}},
    {"a": "text", "x": {"y": "ok"}},
    {"a": {"b": [1, 2]}, "x": {"y": {"z": 1}}},
    {"a": {"c": 1}, "x": {"y": ""}},
    {"x": None},
    {"x": {"y": "ok"}, "rows": [{"offer": {"id": "o-1", "detail": {"name": "套餐"}}}, {"offer": None},
                                {"offer": {"id": "", "detail": []}}, {},
                                {"offer": {"detail": {"name": ""}}}]},
    [{"a": {"b": 1}}],
    {"x": {"y": "ok"}, "rows": [{"offer": {"detail": {"name": 5}}}]},
]  # fmt: skip


def test_dotted_jmespath_names_give_the_runners_outcome(tmp_path: Path) -> None:
    """A dotted JMESPath name written out as a chain of ``dict.get`` gives the runner's output or error on
    objects, nulls, lists, strings, blanks and missing keys, and the block hands nothing back to it for
    the bodies it accepts."""
    mapping = make_mapping_project(tmp_path, {"t/dotted": DOTTED}).transforms.get("t/dotted")
    [rules] = _rule_transforms(mapping)
    assert rules.plan is not None
    assert "w.get('b')" in getattr(rules.plan, "source", ""), "the dotted names are written out"
    bodies = [orjson.dumps(body) for body in DOTTED_BODIES]
    compiled = [_outcome(mapping, body) for body in bodies]
    with _reference([mapping]):
        assert [_outcome(mapping, body) for body in bodies] == compiled
    assert sum(o.startswith(b"MappingError") for o in compiled) >= 3
    count = _counting_fallbacks([mapping])
    for body, outcome in zip(bodies, compiled, strict=True):
        if not outcome.startswith(b"MappingError"):
            mapping.transform_body(body)
    assert count == [0]
