"""`esb receive`: queues (peek, consume, count, JSON) and batch outboxes, bodies decoded by charset."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from esb.cli.main import cli
from esb.message import Message
from esb.ops.receive import charset_of, show
from esb.project import Project

ROOT = Path(__file__).resolve().parents[2]
GBK_ORDER = '<?xml version="1.0" encoding="GBK"?><SiebelMessage>张伟</SiebelMessage>'.encode("gbk")


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """The shipped project's data folder and exchange folder moved under tmp_path."""
    return {"ESB_DATA_DIR": str(tmp_path / "var"), "ESB_EXCHANGE_DIR": str(tmp_path / "exchange")}


def esb(environ: dict[str, str], *args: str) -> Result:
    """Run an esb command on the shipped project with ``environ``."""
    return CliRunner().invoke(cli, ["--project", str(ROOT), *args], env=environ)


def publish(environ: dict[str, str], endpoint: str, *messages: Message) -> None:
    """Put ``messages`` on ``endpoint`` through its adapter's sink."""
    project = Project.load(ROOT, environ=environ)
    sink = project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint))
    with sink:
        for message in messages:
            sink.write(message)


def lines(result: Result) -> list[dict[str, object]]:
    """The JSON Lines of a --json run."""
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_peek_leaves_the_queue_as_it_was_and_receive_takes_count(environ: dict[str, str]) -> None:
    """--peek shows every waiting message and takes none; --count 2 takes the two oldest, in order."""
    publish(environ, "iom.orders_in", *(Message(body=b'{"n": %d}' % i, id=f"m{i}") for i in range(3)))
    looked = esb(environ, "receive", "iom.orders_in", "--peek", "--count", "10", "--json")
    assert looked.exit_code == 0, looked.output
    assert [m["id"] for m in lines(looked)] == ["m0", "m1", "m2"]
    again = esb(environ, "receive", "iom.orders_in", "--peek", "-n", "10", "--json")
    assert [m["id"] for m in lines(again)] == ["m0", "m1", "m2"]

    taken = esb(environ, "receive", "iom.orders_in", "--count", "2", "--json", "--wait", "0.2")
    assert taken.exit_code == 0, taken.output
    assert [(m["id"], m["body"]) for m in lines(taken)] == [("m0", '{"n": 0}'), ("m1", '{"n": 1}')]
    left = esb(environ, "receive", "iom.orders_in", "--peek", "-n", "10", "--json")
    assert [m["id"] for m in lines(left)] == ["m2"]


def test_an_empty_queue_exits_1_and_says_so(environ: dict[str, str]) -> None:
    """Nothing waiting is exit code 1 with a line on stderr, nothing on stdout."""
    result = esb(environ, "receive", "iom.orders_in", "--wait", "0.1")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "nothing waiting on iom.orders_in" in result.stderr


def test_text_output_shows_id_headers_and_the_body_decoded_from_gbk(environ: dict[str, str]) -> None:
    """A GBK Siebel order is shown as Chinese text with its headers, the charset from its declaration."""
    publish(environ, "crm.orders_out", Message(body=GBK_ORDER, id="o1", headers={"channel": "store"}))
    result = esb(environ, "receive", "crm.orders_out", "--wait", "0.2")
    assert result.exit_code == 0, result.output
    assert "--- o1  (" in result.stdout
    assert "gb18030" in result.stdout
    assert "channel: store" in result.stdout
    assert "<SiebelMessage>张伟</SiebelMessage>" in result.stdout
    assert "1 message(s) received from crm.orders_out" in result.stderr


def test_charset_comes_from_headers_then_xml_declaration_then_endpoint() -> None:
    """A content-type charset wins, then an XML declaration, then the endpoint's encoding; GBK is GB18030."""
    assert charset_of(Message(body=b"x", headers={"content-type": "text/xml; charset=GB2312"}), "utf-8") == (
        "gb18030"
    )
    assert charset_of(Message(body=b'<?xml version="1.0" encoding="UTF-8"?><a/>'), "gbk") == "UTF-8"
    assert charset_of(Message(body=b"plain"), "gbk") == "gb18030"
    shown = show(Message(body=b"\xff\xfe\x00", id="x"), "a.b", "utf-8")
    assert shown.body == "ff fe 00"
    assert shown.note is not None
    assert "not utf-8" in shown.note


def test_outbox_shows_complete_files_and_receive_removes_them(environ: dict[str, str]) -> None:
    """Only files with their done file are shown (GBK decoded); receiving removes file and done file."""
    folder = Path(environ["ESB_EXCHANGE_DIR"]) / "ncr" / "in"
    folder.mkdir(parents=True)
    (folder / "571_CUST_20261206_001.dat").write_bytes("H|571\nD|CUST-1|张伟\nT|1\n".encode("gbk"))
    (folder / "571_CUST_20261206_001.dat.ok").write_bytes(b"")
    (folder / "571_CUST_20261206_002.dat").write_bytes(b"H|571\n")  # no done file yet: incomplete
    (folder / ".571_CUST_20261206_003.dat.abc.part").write_bytes(b"")  # an upload in progress

    looked = esb(environ, "receive", "ncr.customers_out", "--peek", "-n", "10", "--json")
    assert looked.exit_code == 0, looked.output
    [only] = lines(looked)
    assert only["id"] == "571_CUST_20261206_001.dat"
    assert only["charset"] == "gb18030"
    assert "D|CUST-1|张伟" in str(only["body"])
    assert (folder / "571_CUST_20261206_001.dat").exists()

    taken = esb(environ, "receive", "ncr.customers_out", "-n", "10")
    assert taken.exit_code == 0, taken.output
    assert sorted(p.name for p in folder.iterdir()) == [
        ".571_CUST_20261206_003.dat.abc.part",
        "571_CUST_20261206_002.dat",
    ]
    assert esb(environ, "receive", "ncr.customers_out").exit_code == 1


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("hotline.soap_balance", "neither a queue nor an outbox"),
        ("billing.charges_in", "is an inbound endpoint"),
        ("iom.orders_inn", "unknown endpoint 'iom.orders_inn'"),
    ],
)
def test_endpoints_that_cannot_be_received_from_are_clear_errors(
    environ: dict[str, str], endpoint: str, expected: str
) -> None:
    """A SOAP listener, an inbound batch folder and a misspelt name are refused, saying why."""
    result = esb(environ, "receive", endpoint)
    assert result.exit_code != 0
    assert expected in str(result.exception) + result.output
