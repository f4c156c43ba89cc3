"""The inbound side: a Source handing out one Delivery per record of the staged files, in order.

``connect`` opens the state store and starts the poller on its schedule (apscheduler); ``read`` takes the
oldest staged file (a file interrupted by a restart first), checks it whole, then hands out its records.
A refused file is marked ``failed`` with a clear error; the poller moves it to ``error/``. A file whose
every record was settled is marked ``processed``; the poller uploads its reply and moves it to ``done/``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from adapters.batch.config import BatchEndpoint
from adapters.batch.errors import BadFileError
from adapters.batch.inbound import FileRun
from adapters.batch.jobruns import record_runs
from adapters.batch.journaling import FileJournal
from adapters.batch.layouts import load_layout
from adapters.batch.parsers import RecordReader, reader_for
from adapters.batch.poller import InboundPoller
from adapters.batch.scheduling import join_election, run_soon, start_scheduler, when_leader
from adapters.batch.staging import endpoint_dirs
from adapters.batch.store import StateStore
from esb.context import AdapterContext
from esb.exceptions import ConfigError
from esb.logging import get_logger
from esb.typing import Delivery


class BatchSource:
    """Reads batch files record by record (see the module docstring)."""

    def __init__(self, endpoint: BatchEndpoint, context: AdapterContext, *, schedule: bool = True) -> None:
        if endpoint.inbound is None:
            raise ConfigError(f"{context.endpoint}: a batch endpoint used as a source needs 'inbound'")
        self.endpoint = endpoint
        self.context = context
        self.schedule = schedule
        self.dirs = endpoint_dirs(context)
        self.store = StateStore(self.dirs.state)
        self.log = get_logger("batch").bind(endpoint=context.endpoint)
        self.run: FileRun | None = None
        self.poller: InboundPoller | None = None
        self._scheduler: Any = None
        self._reader: RecordReader | None = None
        self._wake = threading.Event()
        self.election: Any = None  # set when scheduled: only the leading process polls and reads
        self._leading = True  # as far as read() knows; a first poll runs at connect anyway

    def connect(self) -> None:
        """Open the state store and staging area, start polling (I/O starts here)."""
        assert self.endpoint.inbound is not None
        layout = load_layout(self.endpoint.layout, self.context.project_dir)
        self._reader = reader_for(layout, self.endpoint.read_encoding, self.endpoint.inbound.max_line_bytes)
        self.dirs.create()
        self.store.open()
        self.poller = InboundPoller(
            self.endpoint,
            self.context.project_dir,
            self.store,
            self.dirs,
            self._wake.set,
            self.log,
            reader=self._reader,
            journal=FileJournal(self.context) if self.endpoint.inbound.journal else None,
        )
        if self.schedule:
            self.election = join_election(self.context)
            self._scheduler = start_scheduler(
                self.endpoint.inbound.poll,
                when_leader(self.election, self.poller.scheduled),
                f"poll {self.context.endpoint}",
                run_now=True,
            )
            record_runs(self._scheduler, self.dirs.state, self.election)  # esb health: last run

    def poll_now(self) -> None:
        """Run one poll in this thread (tests, ``esb`` commands); raises TransportError on failure."""
        assert self.poller is not None, "connect() first"
        self.poller.run_once()

    def read(self, timeout: float) -> Delivery | None:
        """Return the next record's delivery, or None when nothing is ready within ``timeout``."""
        run = self.run
        if run is not None and (delivery := run.next_delivery()) is not None:
            return delivery  # the usual case: the next record of the file in hand
        if self.election is not None:
            if not self.election.is_leader:
                self._leading = False
                self._wake.wait(timeout)  # another process leads this endpoint: it reads the files
                return None
            if not self._leading:  # just elected (or taken over): poll now, not at the next tick
                self._leading = True
                run_soon(self._scheduler, f"poll {self.context.endpoint}")
        deadline = time.monotonic() + timeout
        while True:
            delivery = self._next()
            if delivery is not None:
                return delivery
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._wake.wait(min(remaining, 0.25))
            self._wake.clear()

    def _next(self) -> Delivery | None:
        while True:
            if self.run is None and not self._open_next():
                return None
            assert self.run is not None
            delivery = self.run.next_delivery()
            if delivery is not None:
                return delivery
            if not self.run.finished:
                return None  # records in hand (e.g. parked in an aggregate) not settled yet
            self.run.finish()
            self.run = None
            run_soon(self._scheduler, f"poll {self.context.endpoint}")

    def _open_next(self) -> bool:
        assert self.endpoint.inbound is not None
        assert self._reader is not None
        for row in self.store.files_in("processing") + self.store.files_in("checked", "staged"):
            run = FileRun(
                row,
                self._reader,
                self.store,
                self.dirs,
                source=self.context.system,
                message_type=self.endpoint.inbound.message_type,
                encoding=self.endpoint.read_encoding,
                checkpoint_every=self.endpoint.inbound.checkpoint_every,
                log=self.log,
            )
            try:
                run.start()
            except BadFileError as exc:
                run.close()
                self.log.error("batch file refused", file=row["name"], error=str(exc))
                self.store.set_file(row["key"], status="failed", error=str(exc))
                run_soon(self._scheduler, f"poll {self.context.endpoint}")
                continue
            self.run = run
            return True
        return False

    def close(self) -> None:
        """Stop polling, close the file in hand (unsettled records come back after a restart). Idempotent."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self.election is not None:
            self.election.stop()
            self.election = None
        if self.run is not None:
            self.run.checkpoint()
            self.run.close()
            self.run = None
        if self.poller is not None:
            self.poller.close()
            self.poller = None
        self.store.close()

    def __enter__(self) -> BatchSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
