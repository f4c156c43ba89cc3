"""Whole flows through the running hub: a Billing batch in, records routed; restart mid-file."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from esb.project import Project
from esb.runtime.hub import Hub
from esb.runtime.pipeline import build_pipeline
from esb.testing import BROKER
from simulators.batch_files import write_charge_file

ROOT = Path(__file__).resolve().parents[2]
NAME = "CHG_571_20240531_001.dat"

SYSTEMS = """\
systems:
  billing:
    name: Billing
    endpoints:
      charges_in:
        adapter: batch
        encoding: gbk
        layout: config/layouts/billing_charge_record.yaml
        remote: {{protocol: local, path: "{inbox}"}}
        inbound:
          pattern: "CHG_*.dat"
          poll: {{interval: 0.2s}}
          message_type: billing.charge_record
          checkpoint_every: {checkpoint}
  ledger:
    name: Ledger (memory, for the test)
    endpoints:
      charges: {{adapter: memory}}
"""
ROUTES = """\
routes:
  - id: billing-charges
    from: billing.charges_in
    steps:
      - transform: billing/charge_record_to_canonical
    to: ledger.charges
"""


def _project(tmp: Path, checkpoint: int = 1000) -> Project:
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "config" / "layouts", tmp / "config" / "layouts", dirs_exist_ok=True)
    shutil.copytree(ROOT / "transforms" / "billing", tmp / "transforms" / "billing", dirs_exist_ok=True)
    (tmp / "inbox").mkdir(exist_ok=True)
    (tmp / "config" / "systems.yaml").write_text(SYSTEMS.format(inbox=tmp / "inbox", checkpoint=checkpoint))
    (tmp / "routes.yaml").write_text(ROUTES)
    (tmp / "config" / "settings.yaml").write_text("data_dir: var\nlogging: {level: warning}\n")
    return Project.load(tmp, environ={})


def _wait(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.1)


def test_billing_batch_of_100000_gbk_records_is_routed(tmp_path: Path) -> None:
    """A 100,000-record GBK fixed-width Billing file is picked up, checked, parsed, run through the
    route's steps to its sink, then moved to done/ (the hub's journal, ~1 ms a message, is left out here:
    test_restart_mid_file runs the real hub)."""
    project = _project(tmp_path)
    route = project.route("billing-charges")
    total = write_charge_file(tmp_path / "inbox" / NAME, 100_000)
    (tmp_path / "inbox" / f"{NAME}.ok").write_bytes(b"")
    pre, _, _ = build_pipeline(project, route, lambda name: None)
    adapter = project.adapter_for(route.from_)
    source = adapter.source(project.endpoint(route.from_), project.context(route.from_))
    source.schedule = False
    sink = project.adapter_for("ledger.charges").sink(
        project.endpoint("ledger.charges"), project.context("ledger.charges")
    )
    with source:
        source.poll_now()
        while (delivery := source.read(0.05)) is not None:
            for output in pre(delivery.message):
                sink.write(output)
            delivery.ack()
        source.poll_now()
    written = BROKER.written("ledger.charges")
    assert len(written) == 100_000
    assert len({m.id for m in written}) == 100_000
    assert written[0].type == "billing.charge_applied"
    assert sum(int(m.body["taxIncludedAmount"]["value"].replace(".", "")) for m in written) == total * 100
    assert (tmp_path / "inbox" / "done" / NAME).exists()


RECORDS = 15_000


def test_restart_mid_file_loses_and_repeats_nothing_downstream(tmp_path: Path) -> None:
    """Stopping the hub mid-file and starting it again delivers every record exactly once."""
    # The hub takes a backlog in batches, fast: the file must be large enough to stop it half-way.
    project = _project(tmp_path, checkpoint=50)
    write_charge_file(tmp_path / "inbox" / NAME, RECORDS)
    (tmp_path / "inbox" / f"{NAME}.ok").write_bytes(b"")
    hub = Hub(project)
    hub.start()
    _wait(lambda: len(BROKER.written("ledger.charges")) >= 700, 60)
    hub.stop()
    partial = len(BROKER.written("ledger.charges"))
    assert 700 <= partial < RECORDS, "the hub finished the file before it was stopped: raise RECORDS"
    with Hub(_project(tmp_path, checkpoint=50)):
        _wait(lambda: (tmp_path / "inbox" / "done" / NAME).exists(), 60)
    ids = [m.id for m in BROKER.written("ledger.charges")]
    assert len(ids) == RECORDS
    assert len(set(ids)) == RECORDS
