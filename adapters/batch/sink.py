"""The outbound side: a Sink that spools records and writes them out as files, by schedule and/or size.

``write`` commits the record to the endpoint's outbox (SQLite, fsynced) before it returns, so the route
may ack upstream. A flush renders every waiting record into one file (header, details, trailer) in the
receiver's layout and encoding under ``outbox/`` (fresh temp name, fsync, rename), records it with its
sequence number, then uploads it under a fresh temp name (``.<name>.<random>.part``), renames it into
place and writes the done file the same way. A dropped connection leaves only the temp name, and the
upload is retried (every ``retry_interval``, and at each flush) until it succeeds.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import delete, insert, select, update

from adapters.batch.config import BatchEndpoint, OutboundConfig
from adapters.batch.jobruns import RETRY_INTERVAL, record_runs
from adapters.batch.layouts import Layout, load_layout
from adapters.batch.remote import make_remote, plain_files
from adapters.batch.scheduling import join_election, start_scheduler, when_leader
from adapters.batch.staging import endpoint_dirs
from adapters.batch.store import StateStore, batches, outbox
from adapters.batch.writers import render
from esb import files
from esb.context import AdapterContext
from esb.exceptions import ConfigError, MessageError, TransportError
from esb.files import new_file
from esb.logging import get_logger
from esb.message import Message

PAGE = 5000


class BatchSink:
    """Aggregates messages into batch files (see the module docstring)."""

    def __init__(self, endpoint: BatchEndpoint, context: AdapterContext, *, schedule: bool = True) -> None:
        if endpoint.outbound is None:
            raise ConfigError(f"{context.endpoint}: a batch endpoint used as a sink needs 'outbound'")
        self.endpoint = endpoint
        self.out: OutboundConfig = endpoint.outbound
        self.context = context
        self.schedule = schedule
        self.dirs = endpoint_dirs(context)
        self.store = StateStore(self.dirs.state)
        self.log = get_logger("batch").bind(endpoint=context.endpoint)
        self.layout: Layout | None = None
        self._flush_lock = threading.Lock()
        self._schedulers: list[Any] = []
        self.election: Any = None  # set when scheduled: only the leading process flushes

    def connect(self) -> None:
        """Open the outbox and start the flush and retry schedules."""
        self.layout = load_layout(self.endpoint.layout, self.context.project_dir)
        self.dirs.create()
        self.store.open()
        if not self.schedule:
            return
        from adapters.batch.config import ScheduleConfig

        self.election = join_election(self.context)
        if self.out.schedule is not None:
            self._schedulers.append(
                start_scheduler(
                    self.out.schedule,
                    when_leader(self.election, self._scheduled_flush),
                    f"flush {self.context.endpoint}",
                    run_now=False,
                )
            )
        retry = ScheduleConfig(
            interval=RETRY_INTERVAL,
            timezone=self.out.schedule.timezone if self.out.schedule else "Asia/Shanghai",
        )
        self._schedulers.append(
            start_scheduler(
                retry,
                when_leader(self.election, self._scheduled_retry),
                f"retry {self.context.endpoint}",
                run_now=True,
            )
        )
        for scheduler in self._schedulers:  # esb health: last run of each job
            record_runs(scheduler, self.dirs.state, self.election)

    def write(self, message: Message) -> None:
        """Keep ``message`` (a flat record: field name -> value) for the next file; flush at max_records."""
        if not isinstance(message.body, dict):
            raise MessageError(
                f"{self.context.endpoint}: a batch record must be an object of fields, got "
                f"{type(message.body).__name__} (add a transform to the route)"
            )
        waiting = self.store.spool(message.id, orjson.dumps(message.body).decode("utf-8"))
        full = self.out.max_records is not None and waiting >= self.out.max_records
        if full and (self.election is None or self.election.is_leader):  # else the leader's flush takes them
            self.flush()

    # -- flushing -----------------------------------------------------------------------------------
    def flush(self, now: datetime | None = None) -> str | None:
        """Write every waiting record into a new file and upload it; return its name (None if nothing).

        Raises TransportError when the upload fails: the file is kept and retried.
        """
        with self._flush_lock:
            name = self._render(now or datetime.now(ZoneInfo(self._tz())))
            self.upload_pending()
            return name

    def _tz(self) -> str:
        return self.out.schedule.timezone if self.out.schedule else "Asia/Shanghai"

    def write_file(self, records: Iterable[dict[str, Any]], now: datetime | None = None) -> tuple[str, int]:
        """Write ``records`` (an iterator: never held in memory) as one file of their own, bypassing the
        outbox, and upload it; return its name and record count. For whole extracts (a weekly full file):
        the file gets the endpoint's next sequence number, its done file, and the retries of any file.
        """
        with self._flush_lock:
            name, count = self._render_file(now or datetime.now(ZoneInfo(self._tz())), iter(records))
            self.upload_pending()
            return name, count

    def _render(self, now: datetime) -> str | None:
        with self.store.db.connect() as conn:
            top = conn.execute(
                select(outbox.c.seq).where(outbox.c.batch.is_(None)).order_by(outbox.c.seq.desc()).limit(1)
            ).scalar()
        if top is None and not self.out.write_empty:
            return None
        name, _count = self._render_file(now, self._bodies(top or 0), outbox_top=top or 0)
        return name

    def _render_file(
        self, now: datetime, bodies: Iterator[dict[str, Any]], outbox_top: int | None = None
    ) -> tuple[str, int]:
        """Render ``bodies`` into the next file, record it; with ``outbox_top`` mark those outbox rows."""
        assert self.layout is not None
        scope = now.strftime("%Y%m%d") if self.out.sequence_scope == "day" else "all"
        seq = self.store.next_sequence(scope)
        name = self.out.file_name.format_map({**self.out.name_vars, "date": now, "seq": seq})
        control = {
            **self.out.name_vars,
            "file_name": name,
            "file_date": now.date(),
            "sequence": seq,
            "file_time": now,
        }
        final = self.dirs.outbox / name
        with new_file(self.dirs.outbox) as pending:
            count = render(self.layout, self.endpoint.encoding, pending.out, bodies, control)
            pending.keep(name)
        with self.store.db.begin() as conn:
            inserted = conn.execute(
                insert(batches).values(
                    file_name=name,
                    status="rendered",
                    records=count,
                    local=str(final),
                    created=int(time.time()),
                )
            ).inserted_primary_key
            assert inserted is not None
            batch_id = inserted[0]
            if outbox_top is not None:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.batch.is_(None), outbox.c.seq <= outbox_top)
                    .values(batch=batch_id)
                )
        self.log.info("batch file written", file=name, records=count, sequence=seq)
        return name, count

    def _bodies(self, top: int) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            with self.store.db.connect() as conn:
                rows = conn.execute(
                    select(outbox.c.seq, outbox.c.body)
                    .where(outbox.c.batch.is_(None), outbox.c.seq > last, outbox.c.seq <= top)
                    .order_by(outbox.c.seq)
                    .limit(PAGE)
                ).all()
            if not rows:
                return
            for seq, body in rows:
                last = seq
                yield orjson.loads(body)

    def upload_pending(self) -> list[str]:
        """Upload every rendered file not yet uploaded; return their names. Raises TransportError."""
        with self.store.db.connect() as conn:
            pending = (
                conn.execute(select(batches).where(batches.c.status == "rendered").order_by(batches.c.id))
                .mappings()
                .all()
            )
        if not pending:
            return []
        remote = make_remote(self.endpoint.remote, self.context.project_dir)
        remote.connect()
        try:
            for row in pending:
                self._upload(remote, row["file_name"], Path(row["local"]))
                with self.store.db.begin() as conn:
                    conn.execute(update(batches).where(batches.c.id == row["id"]).values(status="uploaded"))
                    conn.execute(delete(outbox).where(outbox.c.batch == row["id"]))
                self.log.info("batch file uploaded", file=row["file_name"], records=row["records"])
        finally:
            remote.close()
        return [r["file_name"] for r in pending]

    def _upload(self, remote: Any, name: str, local: Path) -> None:
        present = {e.name for e in plain_files(remote.list())}
        if name not in present:  # uploaded under a fresh temp name, renamed into place (Remote.upload)
            with files.open_file(local, "read") as data:
                remote.upload(data, name)
        suffix = self.out.done_suffix
        if suffix and name + suffix not in present:
            remote.upload(io.BytesIO(b""), name + suffix)

    def _scheduled_flush(self) -> None:
        try:
            self.flush()
        except TransportError as exc:
            self.log.warning("batch upload failed; retried", error=str(exc))
        except Exception:
            self.log.exception("batch flush failed")

    def _scheduled_retry(self) -> None:
        try:
            with self._flush_lock:
                self.upload_pending()
        except TransportError as exc:
            self.log.warning("batch upload failed; retried", error=str(exc))
        except Exception:
            self.log.exception("batch upload retry failed")

    def close(self) -> None:
        """Stop the schedules (waiting records stay in the outbox). Safe to call twice."""
        for scheduler in self._schedulers:
            scheduler.shutdown(wait=True)
        self._schedulers = []
        if self.election is not None:
            self.election.stop()
            self.election = None
        self.store.close()

    def __enter__(self) -> BatchSink:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
