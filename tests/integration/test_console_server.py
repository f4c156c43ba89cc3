"""The console served by waitress on loopback: the generated admin, console.json, login over HTTP."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import orjson
import requests

from esb.console.server import ConsoleServer, info_path
from tests.unit.routes_fixture import make_project

ROUTE = {"id": "orders", "from": "crm.orders", "to": "iom.orders"}


def test_without_users_a_generated_admin_logs_in(tmp_path: Path) -> None:
    """With console.users empty the hub makes an admin whose password only console.json (0600) holds."""
    project = make_project(tmp_path, [ROUTE], ["crm.orders", "iom.orders"])
    project.settings.console.port = 0
    server = ConsoleServer(lambda: project)
    server.start()
    try:
        path = info_path(project.settings)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        info = orjson.loads(path.read_bytes())
        assert info["url"].startswith("http://127.0.0.1:")
        http = requests.Session()
        form = http.get(info["url"] + "/login", timeout=10)
        assert form.headers["X-Frame-Options"] == "DENY"
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        wrong = http.post(info["url"] + "/login", timeout=10,
                          data={"csrf_token": token, "username": "admin", "password": "guess"})
        assert wrong.status_code == 401
        good = http.post(info["url"] + "/login", timeout=10,
                         data={"csrf_token": token, "username": info["user"], "password": info["password"]})
        assert good.status_code == 200
        assert 'data-route="orders"' in good.text
    finally:
        server.stop()
    assert not info_path(project.settings).exists()
