"""The operators' console through Flask's test client: login, roles, CSRF, throttling, pages, audit."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from esb.config.settings import ConsoleSettings
from esb.console.app import create_app
from esb.console.audit import AuditLog
from esb.console.security import LoginThrottle
from esb.console.state import ConsoleState
from esb.console.users import hash_password, parse_users, verify_password
from esb.exceptions import ConfigError
from esb.journal import Journal
from esb.message import Message
from esb.ops.health import Check
from esb.runtime.control import RouteControl, acting_as, who
from esb.runtime.monitoring import HealthWatch
from tests.unit.routes_fixture import make_project

ROUTE = {"id": "orders", "from": "crm.orders", "to": "iom.orders",
         "business_keys": {"msisdn": "body.msisdn"}}


def _entry(name: str, role: str, password: str) -> str:
    return f"{name}:{role}:{hash_password(password, iterations=1000)}"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleState]:
    """A console over a one-route project with a journaled message, an operator and a viewer."""
    project = make_project(tmp_path, [ROUTE], ["crm.orders", "iom.orders"])
    url = project.settings.journal.url
    journal, audit = Journal(url), AuditLog(url)
    journal.connect()
    audit.connect()
    message = Message(body={"msisdn": "13307550001"}, id="m-1", source="crm",
                      business_keys={"msisdn": "13307550001"})
    journal.received("orders", message)
    journal.event("orders", message, "delivered")
    entries = [_entry("olga", "operator", "op-pass"), _entry("vic", "viewer", "view-pass")]
    users = parse_users(" ".join(entries))
    state = ConsoleState(lambda: project, ConsoleSettings(login_attempts=3), journal, audit, users, "k" * 64)
    yield state
    state.health.stop()
    journal.close()
    audit.close()


@pytest.fixture
def client(console: ConsoleState) -> FlaskClient:
    """A test client of the console app."""
    app = create_app(console)
    app.testing = True
    return app.test_client()


def token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found is not None
    return found.group(1)


def login(client: FlaskClient, name: str, password: str) -> Any:
    """Post the login form with its CSRF token."""
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token(client)})


def test_every_page_needs_a_login(client: FlaskClient) -> None:
    """Without a session, pages redirect to the login form and the JSON endpoint answers 403."""
    for path in ("/", "/search?key=x", "/processes", "/dlq", "/health", "/audit"):
        assert client.get(path).status_code == 302, path
    assert client.get("/api/figures").status_code == 403


def test_login_then_routes_page_and_live_figures(client: FlaskClient) -> None:
    """A good login opens the routes page (with its chart) and the figures endpoint."""
    assert login(client, "olga", "op-pass").status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert 'data-route="orders"' in page
    assert "<svg" in page
    figures = client.get("/api/figures").get_json()
    assert figures["routes"][0]["route"] == "orders"
    assert figures["routes"][0]["delivered"] == 1


def test_session_cookie_is_httponly_and_strict(client: FlaskClient) -> None:
    """The session cookie cannot be read by scripts nor sent by other sites."""
    response = login(client, "olga", "op-pass")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_wrong_password_refused_and_throttled(client: FlaskClient) -> None:
    """Wrong passwords are refused; after login_attempts failures even the right one waits."""
    for _ in range(3):
        assert login(client, "olga", "nope").status_code == 401
    answer = login(client, "olga", "op-pass")
    assert answer.status_code == 429
    assert "too many failed logins" in answer.get_data(as_text=True)


def test_post_without_csrf_token_refused(client: FlaskClient, console: ConsoleState) -> None:
    """A POST without the session's CSRF token is refused before it acts."""
    login(client, "olga", "op-pass")
    answer = client.post("/routes/orders/suspend", data={"reason": "x"})
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    with RouteControl(console.project().settings.journal.url) as control:
        assert control.suspended() == set()


def test_viewer_refused_an_action(client: FlaskClient, console: ConsoleState) -> None:
    """A viewer may look but a suspend from them is refused (403) and nothing changes."""
    login(client, "vic", "view-pass")
    assert client.get("/").status_code == 200
    answer = client.post("/routes/orders/suspend", data={"csrf_token": token(client, "/")})
    assert answer.status_code == 403
    with RouteControl(console.project().settings.journal.url) as control:
        assert control.suspended() == set()


def test_operator_suspend_is_done_and_audited(client: FlaskClient, console: ConsoleState) -> None:
    """An operator's suspend changes the route (by the console user) and writes an audit row."""
    login(client, "olga", "op-pass")
    answer = client.post("/routes/orders/suspend", data={"csrf_token": token(client, "/"), "reason": "batch"})
    assert answer.status_code == 302
    with RouteControl(console.project().settings.journal.url) as control:
        state = control.states()["orders"]
    assert (state.state, state.changed_by, state.reason) == ("suspended", "console:olga", "batch")
    entry = console.audit.page(10)[0]
    assert (entry.user, entry.role, entry.action, entry.target, entry.outcome) == (
        "olga", "operator", "route.suspend", "orders", "done")
    assert "route.suspend" in client.get("/audit").get_data(as_text=True)


def test_search_by_msisdn_shows_the_timeline(client: FlaskClient) -> None:
    """Searching a business key value shows the message's timeline across its route."""
    login(client, "vic", "view-pass")
    page = client.get("/search?key=13307550001").get_data(as_text=True)
    assert 'id="timeline"' in page
    assert "m-1" in page
    assert "delivered" in page
    assert "Nothing in the journal" in client.get("/search?key=nobody").get_data(as_text=True)


def test_lists_are_paged_on_the_server(client: FlaskClient, console: ConsoleState) -> None:
    """The audit list shows page_size rows and a link to the next page."""
    for n in range(console.settings.page_size + 3):
        console.audit.record(user="olga", role="operator", client=None, action="route.resume",
                             target=f"r{n}", outcome="done")
    login(client, "vic", "view-pass")
    first = client.get("/audit").get_data(as_text=True)
    assert first.count("route.resume") == console.settings.page_size
    assert 'rel="next"' in first
    assert client.get("/audit?page=2").get_data(as_text=True).count("route.resume") == 3


def test_plaintext_password_in_users_refused() -> None:
    """A users entry whose third part is not a PBKDF2 hash is a ConfigError naming the entry."""
    with pytest.raises(ConfigError, match="plaintext passwords are refused"):
        parse_users("olga:operator:secret123")
    with pytest.raises(ConfigError, match="role 'root'"):
        parse_users(_entry("olga", "root", "x"))


def test_password_hash_round_trip() -> None:
    """A hash verifies its password and no other."""
    encoded = hash_password("s3cret", iterations=1000)
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret!", encoded)


def test_throttle_forgets_after_the_window() -> None:
    """A blocked key is accepted again once its failures are older than the window."""
    now = [0.0]
    throttle = LoginThrottle(2, 60.0, clock=lambda: now[0])
    throttle.failed("user:a")
    throttle.failed("user:a")
    assert throttle.blocked_for("user:a") == pytest.approx(60.0)
    now[0] = 61.0
    assert throttle.blocked_for("user:a") == 0.0


def test_acting_as_names_the_operator() -> None:
    """Inside acting_as, who() answers the console user; outside, the OS user."""
    outside = who()
    with acting_as("console:olga"):
        assert who() == "console:olga"
    assert who() == outside


def test_cli_prints_a_user_entry_never_the_password() -> None:
    """`esb console user` prints an entry console.users accepts, holding a hash and not the password."""
    from click.testing import CliRunner

    from esb.cli.main import cli

    result = CliRunner().invoke(cli, ["console", "user", "olga", "--role", "operator"],
                                input="pw-123456\npw-123456\n")
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert "pw-123456" not in line
    user = parse_users(line)["olga"]
    assert user.may_act()
    assert verify_password("pw-123456", user.password_hash)


def test_login_returns_to_the_page_asked_for_but_never_off_site(client: FlaskClient) -> None:
    """After login the user lands on the page that sent them there; another site's address goes to /."""
    form = token(client)
    data = {"username": "vic", "password": "view-pass", "csrf_token": form}
    assert client.post("/login?next=/dlq", data=data).headers["Location"] == "/dlq"
    client.post("/logout", data={"csrf_token": token(client, "/login")})
    for evil in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        data["csrf_token"] = token(client)
        assert client.post(f"/login?next={evil}", data=data).headers["Location"] == "/", evil


def test_figures_are_computed_once_per_ttl(console: ConsoleState, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within figures_ttl every caller gets the kept figures; after it, or for a new project, new ones."""
    from esb.console import figures

    calls: list[object] = []
    monkeypatch.setattr(figures, "route_figures", lambda project, *_: calls.append(project) or [])
    now = [0.0]
    cache = figures.FiguresCache(5.0, clock=lambda: now[0])
    project = console.project()
    cache.get(project, "url")
    cache.get(project, "url")
    assert len(calls) == 1
    now[0] = 5.1
    cache.get(project, "url")
    assert len(calls) == 2
    reloaded = object()
    cache.get(reloaded, "url")  # type: ignore[arg-type]
    assert calls[-1] is reloaded


def _watch(console: ConsoleState, run: Any, every: float = 3600.0) -> HealthWatch:
    """Give the console a health watch running ``run``."""
    console.health = HealthWatch(run, every=every)
    return console.health


def test_health_page_shows_the_last_background_checks_without_running_them(
    client: FlaskClient, console: ConsoleState
) -> None:
    """The checks run once in the background; three views of the page show that result (with when it
    was taken) and run no check of their own."""
    calls: list[int] = []

    def run() -> list[Check]:
        calls.append(1)
        return [Check("broker", "degraded", "slow peer 42")]

    watch = _watch(console, run)
    watch.start()
    _wait(lambda: watch.last() is not None)
    login(client, "vic", "view-pass")
    pages = [client.get("/health").get_data(as_text=True) for _ in range(3)]
    assert calls == [1]
    assert all("slow peer 42" in page and "Checked at" in page for page in pages)
    assert 'id="overall">degraded<' in pages[0]


def test_health_page_before_the_first_checks_end_says_so_and_reloads(
    client: FlaskClient, console: ConsoleState
) -> None:
    """While the first run is still calling peers the page answers at once, saying so; once it ended,
    the page shows its checks."""
    release = threading.Event()
    watch = _watch(console, lambda: release.wait(10) and [Check("journal", "ok", "answers")])
    login(client, "vic", "view-pass")
    waiting = client.get("/health").get_data(as_text=True)  # starts the watch: its run blocks
    assert "first checks are running" in waiting
    assert 'http-equiv="refresh"' in waiting
    release.set()
    _wait(lambda: watch.last() is not None)
    assert "answers" in client.get("/health").get_data(as_text=True)


def test_health_checks_that_raise_show_down_with_the_error(
    client: FlaskClient, console: ConsoleState
) -> None:
    """A run that raises is kept as a result whose verdict is down, naming the error."""
    def broken() -> list[Check]:
        raise RuntimeError("journal locked")

    watch = _watch(console, broken)
    watch.refresh()
    login(client, "vic", "view-pass")
    page = client.get("/health").get_data(as_text=True)
    assert 'id="overall">down<' in page
    assert "RuntimeError: journal locked" in page


def test_health_watch_runs_again_every_interval_until_stopped() -> None:
    """Started, it runs the checks every ``every`` seconds; stopped, no more runs."""
    calls: list[int] = []

    def run() -> list[Check]:
        calls.append(1)
        return []

    watch = HealthWatch(run, every=0.01)
    watch.start()
    watch.start()  # idempotent: one thread
    _wait(lambda: len(calls) >= 3)
    watch.stop()
    seen = len(calls)
    threading.Event().wait(0.1)
    assert len(calls) == seen
    assert not watch.running


def _wait(condition: Any, timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (fails after ``timeout`` seconds)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("timed out")
