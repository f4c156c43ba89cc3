"""One staged file being turned into deliveries: the records in hand, rejects, checkpoints, reconciliation.

Records are handed out in file order, one Delivery each, with the deterministic id
``<sha256 prefix>:<record number>``. A *watermark* follows the acks: it is the last record such that it and
every record before it were settled (acked, i.e. delivered or dead-lettered by the route, or written to
the reject file). Every ``checkpoint_every`` records the watermark, its byte offset and the reject file's
size are committed; a restart resumes there. Records past the checkpoint that were already delivered are
handed out again with the same ids, and the route's journal recognises them as duplicates, so nothing is
lost and nothing reaches a sink twice.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from adapters.batch import replies
from adapters.batch.blocks import RecordBlock
from adapters.batch.errors import BadFileError
from adapters.batch.parsers import LineReader, RecordReader
from adapters.batch.staging import Dirs
from adapters.batch.store import StateStore
from esb import files
from esb.message import Message
from esb.telemetry import NOOP_FILE_SPAN, FileSpan, tracer
from esb.typing import Delivery

#: A Message with no field set yet (next_delivery sets every one of them)
_new_message = object.__new__

#: One record handed out and not yet passed by the watermark: number, end offset, reject file size after
#: it, rejected?  Kept in hand-out order; acks in that order (the usual case) pop from the left.
_Entry = tuple[int, int, int, bool]


class FileRun:
    """Hands out the records of one staged file and keeps its progress."""

    def __init__(
        self,
        row: dict[str, Any],
        reader: RecordReader,
        store: StateStore,
        dirs: Dirs,
        *,
        source: str,
        message_type: str | None,
        encoding: str,
        checkpoint_every: int,
        log: Any,
    ) -> None:
        self.row = row
        self.key: str = row["key"]
        self.name: str = row["name"]
        self.sha: str = row["sha256"]
        self.prefix = self.sha[:16]
        self.correlation_id = f"batch:{self.prefix}"  # never empty: next_delivery needs no __post_init__
        self.reader = reader
        self.store = store
        self.dirs = dirs
        self.source = source
        self.message_type = message_type
        self.encoding = encoding
        self.checkpoint_every = checkpoint_every
        self.log = log
        self.lock = threading.Lock()
        self.window: deque[_Entry] = deque()
        self.early: set[int] = set()  # settled while an earlier record is still out
        self.again: deque[tuple[int, dict[str, Any] | None, int]] = deque()  # number, body, delivery count
        self.exhausted = False
        self._reject_out: BinaryIO | None = None
        self._since_checkpoint = 0
        self._synced_reject_size = 0
        self.trace: FileSpan = NOOP_FILE_SPAN

    def start(self) -> None:
        """Check the file unless staging did (BadFileError refuses it), then open it at its checkpoint."""
        self.trace = tracer().batch_file(self.source, self.name)
        try:
            self._start()
        except BadFileError as exc:
            self.trace.end("refused", {"esb.error": str(exc)})
            raise

    def _start(self) -> None:
        """Open the file (see :meth:`start`)."""
        path = Path(self.row["staged"])
        if self.row["status"] in ("staged", "checked"):
            if self.row["status"] == "staged":  # not checked while it downloaded (xml): check it now
                summary = self.reader.scan(path)
                first, records = summary.first_offset, summary.records
            else:
                first, records = self.row["first_offset"], self.row["records"]
            self.store.set_file(
                self.key,
                status="processing",
                first_offset=first,
                next_offset=first,
                next_record=0,
                reject_size=0,
                records=records,
                delivered=0,
                rejected=0,
            )
            self.row = self.store.file(self.key) or self.row
        self.offset: int = self.row["next_offset"]
        self.watermark: int = self.row["next_record"]
        self.delivered: int = self.row["delivered"]
        self.rejected: int = self.row["rejected"]
        self.reject_size: int = self.row["reject_size"]
        self.committed_reject_size = self._synced_reject_size = self.reject_size
        reject_path = self.dirs.rejects / f"{self.prefix}_{self.name}.rej"
        self._reject_out = files.open_file(reject_path, "append")
        self._reject_out.truncate(self.reject_size)
        self._reject_out.seek(self.reject_size)
        self.blocks = iter(self.reader.blocks(path, self.offset, self.watermark))
        self._block = RecordBlock(self.watermark, [], [])  # the block in hand; _at: its next record
        self._at = 0
        # the records' messages are created when the file is opened for handing out: one timestamp for all
        # (and not one clock read per record, a measurable share of a million-record file's time)
        self.created_at = datetime.now(UTC)
        # the file span's traceparent (nothing when tracing is off): each record's route span its child
        self.headers = {"batch-file": self.name, "batch-record": 0, "batch-sha256": self.sha}
        self.headers.update(self.trace.headers)
        if self.watermark:
            self.log.info("resuming batch file", file=self.name, after_record=self.watermark)

    # -- handing out --------------------------------------------------------------------------------
    def next_delivery(self) -> Delivery | None:
        """Return the next record's delivery; None when every record has been handed out."""
        body: dict[str, Any] | None
        # acquire/release, not ``with``: half the cost, measurable on a path taken once per record
        self.lock.acquire()
        try:
            if self.again:
                number, body, count = self.again.popleft()
            else:
                block, at = self._block, self._at
                if at < len(block.bodies) and (body := block.bodies[at]) is not None:  # the usual case
                    self._at = at + 1
                    number, count = block.before + at + 1, 1
                    self.window.append((number, block.ends[at], self.reject_size, False))
                else:
                    found = self._next_record()
                    if found is None:
                        return None
                    number, body = found
                    count = 1
        finally:
            self.lock.release()
        headers = self.headers.copy()
        headers["batch-record"] = number
        # every field set here, not through Message.__init__: its call (eleven arguments, the default
        # factories' checks, __post_init__) is ~0.2 µs of a record's ~8; tests/unit/test_batch_fastpath.py
        # compares each field with the keyword construction, and fails if Message gains one not set here
        message = _new_message(Message)
        message.body = body
        message.id = f"{self.prefix}:{number}"
        message.correlation_id = self.correlation_id
        message.causation_id = None
        message.type = self.message_type
        message.source = self.source
        message.schema = None
        message.headers = headers
        message.created_at = self.created_at
        message.attempt = 1
        message.business_keys = {}
        message._serialised = None  # the serialisation cache (esb.message): empty
        if count == 1:
            return Delivery(message, partial(self._settle, number, body, 1))
        return Delivery(message, partial(self._settle, number, body, count), delivery_count=count)

    def _next_record(self) -> tuple[int, dict[str, Any]] | None:
        """Past the block's end or at a record that cannot be parsed: reject such records, take the next
        block when needed; the next record to hand out (in the window), or None at the end of the file."""
        block, at = self._block, self._at
        while True:
            if at >= len(block.bodies):
                block = self._block = next(self.blocks, None)  # type: ignore[assignment]
                if block is None:
                    self._block, self.exhausted = RecordBlock(0, [], []), True
                    return None
                at = 0
                continue
            body = block.bodies[at]
            at += 1
            if body is not None:
                break
            self._reject(block, at - 1)
        self._at = at
        number = block.before + at
        self.window.append((number, block.ends[at - 1], self.reject_size, False))
        return number, body

    @property
    def finished(self) -> bool:
        """True when every record was handed out and settled."""
        with self.lock:
            return self.exhausted and not self.again and not self.window

    def _settle(
        self, number: int, body: dict[str, Any] | None, count: int, error: BaseException | None
    ) -> None:
        """The ack of record ``number``'s delivery: hand it out again (error), or move the watermark."""
        self.lock.acquire()  # not ``with``: see next_delivery
        try:
            if error is not None:
                self.again.append((number, body, count + 1))
                return
            window = self.window
            if self.early or window[0][0] != number:
                self._settled(number)
                return
            _, self.offset, self.committed_reject_size, _ = window.popleft()  # in order: the usual case
            self.watermark = number
            self.delivered += 1
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self.checkpoint()
        finally:
            self.lock.release()

    def _reject(self, block: RecordBlock, index: int) -> None:
        """Write record ``index`` of ``block`` (which cannot be parsed) to the reject file; it is settled."""
        assert self._reject_out is not None
        raw, error = block.errors[index]
        number = block.before + index + 1
        reason = error.replace("\n", " ").replace("|", "/")
        line = f"{number}|{reason}|".encode(self.encoding, "replace") + raw + b"\n"
        self._reject_out.write(line)
        self.reject_size += len(line)
        self.window.append((number, block.ends[index], self.reject_size, True))
        self.log.warning("batch record rejected", file=self.name, record=number, reason=reason)
        self.trace.event("record rejected", {"esb.batch.record": number, "esb.error": reason})
        self._settled(number)

    def _settled(self, number: int) -> None:
        """Record ``number`` is settled: move the watermark past it and every settled one after it."""
        window = self.window
        if window[0][0] != number:
            self.early.add(number)  # an earlier record is still out: the watermark waits for it
            return
        while True:
            number, self.offset, self.committed_reject_size, rejected = window.popleft()
            self.watermark = number
            if rejected:
                self.rejected += 1
            else:
                self.delivered += 1
            self._since_checkpoint += 1
            if not (window and self.early) or window[0][0] not in self.early:
                break
            self.early.discard(window[0][0])
        if self._since_checkpoint >= self.checkpoint_every:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Commit the watermark (and the reject file up to it)."""
        if self._reject_out is None:
            return
        if self.reject_size != self._synced_reject_size:  # nothing rejected since: no fsync
            self._reject_out.flush()
            os.fsync(self._reject_out.fileno())
            self._synced_reject_size = self.reject_size
        self.store.checkpoint(
            self.key,
            next_offset=self.offset,
            next_record=self.watermark,
            reject_size=self.committed_reject_size,
            delivered=self.delivered,
            rejected=self.rejected,
        )
        self._since_checkpoint = 0

    # -- the end ------------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Checkpoint, write the reconciliation (and its reply file), mark the file processed."""
        self.checkpoint()
        received = int(self.row["records"])
        figures = {"received": received, "delivered": self.delivered, "rejected": self.rejected}
        self.trace.end("processed", {f"esb.batch.{k}": v for k, v in figures.items()})
        self.close()
        reconciliation = {
            "file": self.name,
            "sha256": self.sha,
            "received": received,
            "delivered": self.delivered,
            "rejected": self.rejected,
            "balanced": received == self.delivered + self.rejected,
            "finished_at": datetime.now(UTC).isoformat(),
        }
        header = self._header()
        if header:
            reconciliation["header"] = header  # the file's own counts (an ack's), for the journal
        files.write_file(
            self.dirs.replies / f"{self.name}.rec",
            replies.encode(replies.processed(reconciliation), self.encoding),
        )
        self.store.set_file(self.key, status="processed", reconciliation=reconciliation)
        self.log.info("batch file processed", **reconciliation)
        return reconciliation

    def _header(self) -> dict[str, Any]:
        """The header record's fields (text, JSON-safe; none when the layout has no header line)."""
        if not isinstance(self.reader, LineReader) or self.reader.header_code is None:
            return {}
        with open(self.row["staged"], "rb") as staged:
            first = staged.readline().rstrip(b"\r\n")
        try:
            fields = self.reader.header_of(first)
        except BadFileError:  # checked when staged: only a file changed since could fail here
            return {}
        return {k: v if isinstance(v, int | str) else str(v) for k, v in fields.items() if k != "record_type"}

    def close(self) -> None:
        """Close the reject file (and the file's span, if the file did not end). Safe to call twice."""
        self.trace.end("interrupted")
        if self._reject_out is not None:
            self._reject_out.close()
            self._reject_out = None
