"""The console's process pages and actions over instances the engine made (SQLite, in-memory endpoints)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from esb.config.settings import ConsoleSettings
from esb.console.app import create_app
from esb.console.audit import AuditLog
from esb.console.state import ConsoleState
from esb.console.users import hash_password, parse_users
from esb.journal import Journal
from esb.process.engine import ProcessStore, Runner
from esb.project import Project
from tests.unit.test_process_cli import (  # the CLI tests' instances: the console acts on the same
    clock,
    fakes,
    root,
    runner,
    store,
    stuck,
    waiting,
)
from tests.unit.test_process_engine import Clock, FakeResources, instance

__all__ = ["clock", "fakes", "root", "runner", "store"]  # fixtures re-used by name


@pytest.fixture
def client(root: Path, store: ProcessStore) -> Iterator[FlaskClient]:
    """The console over the process project, logged in as an operator."""
    project = Project.load(root, environ={})
    url = project.settings.journal.url
    journal, audit = Journal(url), AuditLog(url)
    journal.connect()
    audit.connect()
    users = parse_users(f"olga:operator:{hash_password('pw', iterations=1000)}")
    state = ConsoleState(lambda: project, ConsoleSettings(), journal, audit, users, "k" * 64)
    app = create_app(state)
    app.testing = True
    http = app.test_client()
    with http.session_transaction() as session:
        session["user"], session["role"] = "olga", "operator"
    yield http
    state.process_store.close()
    journal.close()
    audit.close()


def csrf(http: FlaskClient, path: str) -> str:
    """The CSRF token on ``path``."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get(path).get_data(as_text=True))
    assert found is not None
    return found.group(1)


def test_stuck_instance_listed_shown_and_retried(
    client: FlaskClient, runner: Runner, fakes: FakeResources, clock: Clock
) -> None:
    """A stuck instance is listed under its status, shown with its steps, and a retry puts it back to
    compensating (its failed undo due again, as `esb process retry` does)."""
    iid = stuck(runner, fakes, clock)
    listed = client.get("/processes?status=stuck").get_data(as_text=True)
    assert iid in listed
    shown = client.get(f"/processes/{iid}").get_data(as_text=True)
    assert 'id="steps"' in shown
    assert "stuck" in shown
    answer = client.post(f"/processes/{iid}/retry", data={"csrf_token": csrf(client, f"/processes/{iid}")})
    assert answer.status_code == 302
    assert instance(runner.store, iid).status == "compensating"
    assert "process.retry" in client.get("/audit").get_data(as_text=True)


def test_cancel_of_a_waiting_instance_is_accepted_and_audited(client: FlaskClient, runner: Runner) -> None:
    """Cancelling a waiting instance from its page is accepted by the engine and written to the audit."""
    iid = waiting(runner)
    token = csrf(client, f"/processes/{iid}")
    answer = client.post(f"/processes/{iid}/cancel", data={"csrf_token": token, "reason": "customer asked"})
    assert answer.status_code == 302
    page = client.get(f"/processes/{iid}").get_data(as_text=True)
    assert "cancel" in page
    audit = client.get("/audit").get_data(as_text=True)
    assert "process.cancel" in audit
    assert "customer asked" in audit


def test_search_finds_the_instance_by_its_key(client: FlaskClient, runner: Runner) -> None:
    """``name=value`` in the search box finds the process instance holding that business key."""
    iid = waiting(runner, "o-77")
    page = client.get("/search?key=order_id=o-77").get_data(as_text=True)
    assert iid in page
    assert iid not in client.get("/search?key=order_id=o-78").get_data(as_text=True)


def test_the_pages_open_the_process_store_once_and_keep_it(
    client: FlaskClient, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process list, an instance's page and key searches share one store opened at the first of them
    (opening one made an engine and checked the migrations on every request)."""
    from esb.console import stores

    opened: list[ProcessStore] = []

    class Counted(ProcessStore):
        def connect(self) -> None:
            opened.append(self)
            super().connect()

    monkeypatch.setattr(stores, "ProcessStore", Counted)
    iid = waiting(runner, order_id="o-kept")
    assert iid in client.get("/processes").get_data(as_text=True)
    assert "o-kept" in client.get(f"/processes/{iid}").get_data(as_text=True)
    for _ in range(3):
        assert iid in client.get("/search?key=order_id=o-kept").get_data(as_text=True)
    assert len(opened) == 1


def test_process_actions_use_the_kept_store(
    client: FlaskClient, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry and a cancel from an instance's page open no process store of their own: the pages' one."""
    from esb.console import stores
    from esb.ops import processes as ops_processes

    opened: list[ProcessStore] = []

    class Counted(ProcessStore):
        def connect(self) -> None:
            opened.append(self)
            super().connect()

    monkeypatch.setattr(stores, "ProcessStore", Counted)
    monkeypatch.setattr(ops_processes, "ProcessStore", Counted)
    iid = waiting(runner, order_id="o-acts")
    token = csrf(client, f"/processes/{iid}")
    assert client.post(f"/processes/{iid}/retry", data={"csrf_token": token}).status_code == 302
    token = csrf(client, f"/processes/{iid}")
    answer = client.post(f"/processes/{iid}/cancel", data={"csrf_token": token, "reason": "kept"})
    assert answer.status_code == 302
    assert "process.cancel" in client.get("/audit").get_data(as_text=True)
    assert len(opened) == 1


def test_a_kept_store_is_replaced_when_the_journal_url_changes(root: Path, tmp_path: Path) -> None:
    """A project reloaded with another journal gets a store of that journal; the old one is closed."""
    from esb.console.stores import KeptProcessStore

    kept = KeptProcessStore()
    first = Project.load(root, environ={})
    other = Project.load(root, environ={"ESB_JOURNAL__URL": f"sqlite:///{tmp_path / 'other.db'}"})
    store = kept.get(first)
    assert kept.get(first) is store
    moved = kept.get(other)
    assert moved.url.endswith("other.db")
    with pytest.raises(RuntimeError):
        _ = store.engine  # closed
    kept.close()
    with pytest.raises(RuntimeError):
        _ = moved.engine
