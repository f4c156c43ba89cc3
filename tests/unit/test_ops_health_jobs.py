"""esb health: batch jobs with last and next run, local batch folders, SOAP listeners without a hub."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.batch import BatchAdapter, BatchEndpoint
from adapters.batch.health import endpoint_jobs
from adapters.batch.jobruns import read_runs, record_runs, write_run
from adapters.soap import SOAPAdapter, SOAPEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.ops.health import DEGRADED, OK, job_check
from tests.unit.batch_helpers import CHARGE_LAYOUT, PROJECT, context


def outbound(tmp_path: Path, cron: str = "0 2 * * *") -> BatchEndpoint:
    """An NCR-like outbound endpoint over a local folder, flushed on ``cron``."""
    return BatchEndpoint.model_validate({
        "adapter": "batch", "layout": CHARGE_LAYOUT,
        "remote": {"protocol": "local", "path": str(tmp_path / "out")},
        "outbound": {"file_name": "X_{seq:03d}.dat", "schedule": {"cron": cron, "timezone": "UTC"}},
    })


def inbound(tmp_path: Path, every: float = 30) -> BatchEndpoint:
    """A charge inbound endpoint over a local folder, polled every ``every`` seconds."""
    return BatchEndpoint.model_validate({
        "adapter": "batch", "layout": CHARGE_LAYOUT,
        "remote": {"protocol": "local", "path": str(tmp_path / "in")},
        "inbound": {"poll": {"interval": every}},
    })


def state_db(tmp_path: Path, endpoint: str = "billing.charges_in") -> Path:
    """The endpoint's state database under the context's data_dir."""
    return tmp_path / "batch" / endpoint / "state.db"


def test_jobs_read_last_run_and_next_run(tmp_path: Path) -> None:
    """A recorded poll gives last run, outcome and the scheduler's next run; a cron flush its next fire."""
    now = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    write_run(state_db(tmp_path), "poll", outcome="ok", next_run=now + timedelta(seconds=20))
    jobs = BatchAdapter().jobs(inbound(tmp_path), context(tmp_path))
    assert [j["job"] for j in jobs] == ["poll"]
    assert jobs[0]["outcome"] == "ok"
    assert jobs[0]["runs"] == 1
    assert jobs[0]["last_run"] is not None
    assert jobs[0]["next_run"] == now + timedelta(seconds=20)
    flush = endpoint_jobs(outbound(tmp_path), context(tmp_path, "ncr.customers_out"), now=now)
    assert [j["job"] for j in flush] == ["flush", "retry"]
    assert flush[0]["last_run"] is None
    assert flush[0]["next_run"] == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_job_lines_say_never_ok_error_and_overdue(tmp_path: Path) -> None:
    """Never run: ok and says so; a missed run or an overdue interval job is degraded."""
    fresh = job_check("e", {"job": "poll", "schedule": "every 30s", "last_run": None, "next_run": None})
    assert fresh.status == OK
    assert "last run never" in fresh.detail
    old = datetime.now(UTC) - timedelta(hours=1)
    write_run(state_db(tmp_path), "poll", outcome="missed", next_run=old)
    job = endpoint_jobs(inbound(tmp_path), context(tmp_path))[0]
    assert job["overdue"]
    line = job_check("billing.charges_in", job)
    assert line.status == DEGRADED
    assert "last run missed" in line.detail
    write_run(state_db(tmp_path), "poll", outcome="ok", next_run=old)
    line = job_check("billing.charges_in", endpoint_jobs(inbound(tmp_path), context(tmp_path))[0])
    assert line.status == DEGRADED
    assert "OVERDUE" in line.detail
    assert "2 run(s)" in line.detail


def test_scheduler_listener_records_runs_only_while_leading(tmp_path: Path) -> None:
    """A real apscheduler run is recorded with its next run; a follower records nothing."""
    from apscheduler.schedulers.background import BackgroundScheduler

    class Election:
        is_leader = False

    ran: list[int] = []
    for leading, db in ((False, tmp_path / "f.db"), (True, tmp_path / "l.db")):
        election = Election()
        election.is_leader = leading
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(lambda: ran.append(1), "interval", seconds=3600, id="poll x", next_run_time=None)
        record_runs(scheduler, db, election)
        scheduler.start()
        scheduler.get_job("poll x").modify(next_run_time=datetime.now(UTC))
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while len(ran) < (2 if leading else 1) and datetime.now(UTC) < deadline:
            time.sleep(0.01)
        scheduler.shutdown(wait=True)
    assert read_runs(tmp_path / "f.db") == {}
    runs = read_runs(tmp_path / "l.db")
    assert runs["poll"]["outcome"] == "ok"
    assert runs["poll"]["next_run"] is not None


def test_local_folder_health(tmp_path: Path) -> None:
    """A local folder: ok when writable; missing but creatable: ok, not created; a file there: down."""
    endpoint = inbound(tmp_path)
    status, detail = BatchAdapter().health(endpoint, context(tmp_path))
    assert (status, "the hub creates it" in detail) == ("ok", True)
    assert not (tmp_path / "in").exists()
    (tmp_path / "in").mkdir()
    expected = ("ok", f"local:{tmp_path / 'in'}: exists and is writable")
    assert BatchAdapter().health(endpoint, context(tmp_path)) == expected
    (tmp_path / "in").rmdir()
    (tmp_path / "in").write_text("a file, not a folder")
    status, detail = BatchAdapter().health(endpoint, context(tmp_path))
    assert status == "down"
    assert "is not a folder" in detail


def listener(port: int) -> SOAPEndpoint:
    """The CRM one-way operation served on ``port``."""
    return SOAPEndpoint.model_validate({
        "adapter": "soap", "wsdl": "config/contracts/crm/esb-crm.wsdl", "operation": "SubmitBillingAccount",
        "listen": {"port": port, "auth": {"users": [{"username": "u", "password_env": "NOPE_X"}]}},
    })


def test_listener_without_a_hub_is_degraded_and_says_why(tmp_path: Path) -> None:
    """Nothing listens and no hub runs on the data dir: degraded, 'no hub is running'; port 0: unknown."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = AdapterContext(settings=Settings(data_dir=tmp_path), project_dir=PROJECT, endpoint="crm.soap")
    status, detail = SOAPAdapter().health(listener(port), ctx)
    assert status == "degraded"
    assert "no hub is running" in detail
    assert SOAPAdapter().health(listener(0), ctx)[0] == "unknown"


def test_job_error_is_degraded_with_its_text() -> None:
    """A job that raised: degraded with the exception's text."""
    line = job_check("e", {"job": "flush", "schedule": "cron", "last_run": datetime.now(UTC),
                           "outcome": "error", "error": "disk full", "runs": 1, "next_run": None})
    assert line.status == DEGRADED
    assert line.detail.endswith("last run error: disk full")
