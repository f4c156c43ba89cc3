"""Delimited and XML record readers: streaming passes, checks, per-record errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.batch.errors import BadFileError
from adapters.batch.layouts import Layout
from adapters.batch.parsers import reader_for

DELIMITED = Layout.model_validate(
    {
        "name": "t",
        "kind": "delimited",
        "delimiter": "|",
        "record_type": {"column": 0},
        "header": {"code": "H", "fields": [{"name": "rt"}, {"name": "day", "type": "date"}]},
        "detail": {
            "code": "D",
            "fields": [
                {"name": "rt"},
                {"name": "id", "required": True},
                {"name": "amount", "type": "decimal", "scale": 2},
            ],
        },
        "trailer": {
            "code": "T",
            "fields": [
                {"name": "rt"},
                {"name": "count", "type": "int"},
                {"name": "total", "type": "decimal", "scale": 2},
            ],
        },
        "checks": {"record_count": "count", "totals": {"amount": "total"}},
    }
)
XML = Layout.model_validate(
    {
        "name": "x",
        "kind": "xml",
        "record_tag": "customer",
        "trailer_tag": "summary",
        "detail": {"fields": [{"name": "id", "path": "@id"}, {"name": "name", "path": "name"}]},
        "trailer": {"fields": [{"name": "count", "path": "@count", "type": "int"}]},
        "checks": {"record_count": "count"},
    }
)


def test_delimited_file_is_checked_and_read_with_per_record_errors(tmp_path: Path) -> None:
    """A '|' file in GBK passes its trailer checks; a record with a missing id carries its error."""
    path = tmp_path / "f.txt"
    path.write_bytes("H|20240601\nD|张三|1.50\nD||2.00\nT|2|3.50\n".encode("gbk"))
    reader = reader_for(DELIMITED, "gb18030", 1000)
    summary = reader.scan(path)
    assert summary.records == 2
    records = list(reader.records(path, summary.first_offset, 0))
    assert records[0].body == {"rt": "D", "id": "张三", "amount": "1.50"}
    assert records[1].body is None
    assert "field id: is required" in str(records[1].error)


def test_delimited_total_mismatch_refuses_the_file(tmp_path: Path) -> None:
    """A trailer total that differs from the sum of the amounts refuses the file."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"H|20240601\nD|a|1.50\nT|1|1.51\n")
    with pytest.raises(BadFileError, match="amount total mismatch"):
        reader_for(DELIMITED, "utf-8", 1000).scan(path)


def test_xml_records_stream_and_resume_by_count(tmp_path: Path) -> None:
    """XML records are read with iterparse; resuming skips the settled ones; the trailer count is checked."""
    path = tmp_path / "f.xml"
    body = "".join(f'<customer id="C{n}"><name>客户{n}</name></customer>' for n in range(1, 6))
    path.write_bytes(
        f'<?xml version="1.0" encoding="GB18030"?><batch>{body}<summary count="5"/></batch>'.encode("gb18030")
    )
    reader = reader_for(XML, "gb18030", 1000)
    assert reader.scan(path).records == 5
    records = list(reader.records(path, 0, 3))
    assert [r.body for r in records] == [{"id": "C4", "name": "客户4"}, {"id": "C5", "name": "客户5"}]


def test_xml_with_a_dtd_is_refused(tmp_path: Path) -> None:
    """An XML batch file declaring entities is refused, never expanded."""
    path = tmp_path / "f.xml"
    path.write_bytes(
        b'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY x "y">]><batch><customer id="&x;"/></batch>'
    )
    with pytest.raises(BadFileError, match="DTD"):
        reader_for(XML, "utf-8", 1000).scan(path)
