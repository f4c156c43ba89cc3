"""The journal's body codec: zstd rows written now, DEFLATE rows written before, both read back."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from esb.journal import Journal
from esb.journal import bodies as bodies_module
from esb.journal.bodies import (
    DEFLATE,
    MARK,
    SAMPLES,
    ZSTD,
    BodyCodec,
    BodyFormatError,
    pack,
    pack_deflate,
    primed,
    unpack,
    zstd_dictionary,
)
from esb.journal.schema import messages
from esb.message import Message
from simulators.crm import make_order
from simulators.siebel import siebel_order_xml


def siebel_bodies(count: int) -> list[bytes]:
    """The CRM-order route's Siebel orders, as the benches generate them (GBK and UTF-8)."""
    rng = random.Random(7)
    return [siebel_order_xml(make_order(i, rng), encoding="GBK" if i % 2 else "UTF-8") for i in range(count)]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A connected journal on a fresh SQLite database."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


def version_of(stored: bytes) -> int:
    """The codec version byte of a stored body."""
    return stored[len(MARK)]


def stored_bodies(journal: Journal) -> list[bytes]:
    """The ingress body column as stored, oldest first."""
    with journal._read().connect() as conn:
        rows = conn.execute(sa.select(messages.c.body).order_by(messages.c.received_at, messages.c.id))
        return [bytes(row[0]) for row in rows if row[0] is not None]


def test_deflate_rows_written_before_zstd_read_back_with_and_without_a_dictionary() -> None:
    """Bodies stored as raw DEFLATE (version 1, the format before zstd) still unpack to the original."""
    orders = siebel_bodies(12)
    dictionary = b"".join(orders[:SAMPLES])
    for body in orders[SAMPLES:]:
        old = pack_deflate(body, 3, dictionary)
        assert version_of(old) == DEFLATE
        assert unpack(old, dictionary) == body
        assert unpack(pack_deflate(body)) == body


def test_zstd_with_a_learnt_dictionary_round_trips_and_stays_small() -> None:
    """Every CRM order comes back byte for byte from zstd, and the dictionary keeps it under a tenth."""
    orders = siebel_bodies(60)
    dictionary = b"".join(orders[:SAMPLES])
    compressor = primed(zstd_dictionary(dictionary))
    for body in orders[SAMPLES:]:
        stored = pack(body, 5, dictionary, compressor)
        assert version_of(stored) == ZSTD
        assert unpack(stored, dictionary) == body
        assert len(stored) < len(body) / 10, (len(stored), len(body))


@given(st.binary(max_size=5000), st.binary(min_size=1, max_size=3000))
def test_any_bytes_round_trip_through_both_codecs(body: bytes, dictionary: bytes) -> None:
    """Any body, with or without a dictionary, unpacks to itself from zstd and from DEFLATE."""
    assert unpack(pack(body)) == body
    assert unpack(pack(body, 9, dictionary), dictionary) == body
    assert unpack(pack_deflate(body, 9, dictionary), dictionary) == body


def test_a_zstd_body_read_with_another_dictionary_or_cut_short_is_an_error() -> None:
    """A damaged zstd body, or one decoded with the wrong dictionary, raises BodyFormatError, not garbage."""
    orders = siebel_bodies(10)
    dictionary = b"".join(orders[:SAMPLES])
    stored = pack(orders[9], 4, dictionary)
    with pytest.raises(BodyFormatError):
        unpack(stored[:-5], dictionary)
    with pytest.raises(BodyFormatError, match="missing"):
        unpack(stored)
    with contextlib.suppress(BodyFormatError):  # a wrong dictionary fails or gives garbage, never the body
        assert unpack(stored, b"x" * len(dictionary)) != orders[9]


def test_a_journal_with_deflate_rows_from_before_and_zstd_rows_after_reads_both(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal decodes DEFLATE rows written before the upgrade beside zstd rows written after it."""
    orders = siebel_bodies(SAMPLES + 10)

    def old_pack(
        body: bytes, ident: int = 0, dictionary: bytes | None = None, compressor: object = None
    ) -> bytes:
        del compressor  # the codec's zstd compressor: unused by the old format
        return pack_deflate(body, ident, dictionary)

    sent = []
    with monkeypatch.context() as patched:
        patched.setattr(bodies_module, "pack", old_pack)
        for n, body in enumerate(orders[: SAMPLES + 4]):
            sent.append(Message(body=body, id=f"old-{n}"))
            journal.received("orders", sent[-1])
    for n, body in enumerate(orders[SAMPLES + 4 :]):
        sent.append(Message(body=body, id=f"new-{n}"))
        journal.received("orders", sent[-1])
    versions = [version_of(s) for s in stored_bodies(journal)]
    assert versions == [DEFLATE] * (SAMPLES + 4) + [ZSTD] * 6
    for message in sent:
        assert journal.body(message.id) == message.body
    with Journal(journal.url) as other:  # a fresh reader (esb trace, replay) loads the dictionary by id
        assert [other.body(m.id) for m in sent] == [m.body for m in sent]


def test_threads_sharing_a_codec_each_get_their_bodies_back() -> None:
    """Concurrent encodes of one kind from several threads (a zstd compressor per thread) all decode."""
    saved: dict[int, bytes] = {}

    def save(_kind: str, data: bytes) -> int:
        saved[len(saved) + 1] = data
        return len(saved)

    codec = BodyCodec(save, lambda _kind: None, saved.get)
    orders = siebel_bodies(400)
    for body in orders[:SAMPLES]:
        codec.encode("route|in", body)
    results: dict[int, list[bytes]] = {}

    def work(index: int) -> None:
        results[index] = [codec.encode("route|in", b) for b in orders[index::4]]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(4):
        assert [codec.decode(s) for s in results[index]] == orders[index::4]
