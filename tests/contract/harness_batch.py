"""The batch adapter under the contract suite, over a real OpenSSH sshd (internal-sftp) on loopback.

Source: Billing charge files (GBK, fixed width) dropped, with their ``.ok`` done file, into a folder on
the SFTP server; the source is made by the adapter as the engine makes it (scheduled polls, leader
election on the hub's services). Sink: the NCR customer extract written to another folder on the server,
whose files' detail records are what the peer received.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any, ClassVar

import pytest

from adapters.batch import BatchAdapter, BatchEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import MessageError
from esb.message import Message
from esb.typing import CommandProvider, HealthReporter, JobReporter, Sink, Source
from simulators.batch_files import write_charge_file
from tests.contract.harness import HarnessDefaults, Probe, Refusal
from tests.integration.servers_ssh import SSHServer, free_port

REPO = Path(__file__).resolve().parents[2]
_files = itertools.count(1)


class BatchHarness(HarnessDefaults):
    """Charge files in over SFTP (one record, one delivery); customer extracts out over SFTP."""

    declares = frozenset({HealthReporter, JobReporter, CommandProvider})  # esb batch acks
    quiet = 0.5
    cannot: ClassVar[dict[str, str]] = {
        "answer": "a batch file's sender does not wait for an answer",
        "request": "a batch sink writes files one way (no Requester)",
        "break": "the source works on staged local copies: it holds no connection that could die under it",
    }

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.server: SSHServer = request.getfixturevalue("sshd")
        self.adapter = BatchAdapter()
        self.settings = Settings(data_dir=tmp_path / "var")
        tag = tmp_path.name
        self.inbox = self._folder(f"in-{tag}")
        self.outbox = self._folder(f"out-{tag}")
        self.inbound = BatchEndpoint.model_validate({
            "adapter": "batch", "layout": "config/layouts/billing_charge_record.yaml", "encoding": "gbk",
            "remote": self._remote(self.inbox),
            "inbound": {"pattern": "CHG_*.dat", "poll": {"interval": 0.2}, "message_type": "billing.charge"},
        })  # fmt: skip
        self.secret_file = tmp_path / "password"
        self.secret_file.write_text("sftp-s3cret-pw\n", encoding="utf-8")

    def _folder(self, name: str) -> Path:
        folder = self.server.root / name
        folder.mkdir()
        return folder

    def _remote(self, folder: Path, **extra: Any) -> dict[str, Any]:
        return {
            "protocol": "sftp", "host": "127.0.0.1", "port": self.server.port, "username": self.server.user,
            "key_file": str(self.server.key_file), "known_hosts": str(self.server.known_hosts),
            "path": str(folder), "timeout": 5, **extra,
        }  # fmt: skip

    def context(self, endpoint: str = "billing.charges_in") -> AdapterContext:
        """An adapter context with the hub's services on this test's data folder."""
        return AdapterContext(self.settings, REPO, endpoint)

    def close(self) -> None:
        """Nothing to stop: the sshd is the session's."""

    # -- source --------------------------------------------------------------------------------------
    def source_probe(self) -> Probe:
        """The inbound folder."""
        return Probe(self.inbound, self.context())

    def source(self) -> Source:
        """A scheduled source polling the inbound folder."""
        return self.adapter.source(self.inbound, self.context())

    def put(self, n: int) -> dict[str, str]:
        """Drop a charge file of ``n`` records (and then its done file) on the server."""
        path = self.inbox / f"CHG_571_20240531_{next(_files):03d}.dat"
        write_charge_file(path, n)
        path.with_name(path.name + ".ok").write_bytes(b"")
        prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return {f"{prefix}:{k}": f"C571{k:015d}" for k in range(1, n + 1)}

    def marker(self, message: Message) -> str:
        """The record's charge id."""
        return str(message.body["charge_id"])

    # -- sink ----------------------------------------------------------------------------------------
    def _outbound(self, remote: dict[str, Any]) -> BatchEndpoint:
        return BatchEndpoint.model_validate({
            "adapter": "batch", "layout": "config/layouts/ncr_customer_extract.yaml", "encoding": "gbk",
            "remote": remote, "outbound": {"file_name": "571_CUST_{date:%Y%m%d}_{seq:03d}.dat"},
        })  # fmt: skip

    def sink(self) -> Sink:
        """A sink writing customer extracts to the outbound folder."""
        return self.adapter.sink(self._outbound(self._remote(self.outbox)), self.context("ncr.customers_out"))

    def message(self, i: int) -> Message:
        """A customer record whose id is ``C<i>``."""
        return Message({"customer_id": f"C{i}", "customer_name": "客户名称"})

    def send(self, sink: Sink, messages: list[Message]) -> None:
        """Write the records, then flush them into a file and upload it."""
        for message in messages:
            sink.write(message)
        sink.flush()  # type: ignore[attr-defined]  # a BatchSink: files go out on flush

    def received(self) -> list[str]:
        """The customer ids in the detail records of every file uploaded (whole: not a temp name)."""
        got = []
        for path in sorted(self.outbox.glob("571_CUST_*.dat")):
            for line in path.read_bytes().decode("gbk").splitlines():
                if line.startswith("D|"):
                    got.append(line.split("|")[1].removeprefix("C"))
        return got

    def down_sink(self) -> tuple[Sink, str]:
        """A sink to an SFTP server that is not there, logging in with a password file."""
        remote = self._remote(
            self.outbox, port=free_port(), key_file=None, password_file=str(self.secret_file)
        )
        return self.adapter.sink(self._outbound(remote), self.context("ncr.down")), "sftp-s3cret-pw"

    def refusals(self) -> list[Refusal]:
        """A record that is not an object of fields."""

        def not_a_record() -> tuple[Sink, Message]:
            sink = self.sink()
            sink.connect()
            return sink, Message(b"not a record")

        return [Refusal("not a record", not_a_record, MessageError, retryable=False)]

    def health_probes(self) -> tuple[Probe, Probe]:
        """The inbound folder, and the same folder on a port where nothing listens."""
        nowhere = self.inbound.remote.model_copy(update={"port": free_port()})
        dead = self.inbound.model_copy(update={"remote": nowhere})
        return self.source_probe(), Probe(dead, self.context())
