"""Serving the console in the hub's process: waitress on its own loopback port, in a thread.

The URL (and, when ``console.users`` is empty, the generated ``admin`` password) go to
``{data_dir}/console.json`` (mode 0600), like the monitoring listener's ``monitoring.json``.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from esb.config.settings import Settings
from esb.console.audit import AuditLog
from esb.console.state import ConsoleState
from esb.console.users import OPERATOR, User, hash_password, parse_users
from esb.exceptions import ConfigError
from esb.files import open_file
from esb.journal import Journal
from esb.journal.engine import create_journal_engine
from esb.logging import get_logger
from esb.project import Project
from esb.wsgi import create_server, stop_server

INFO_FILE = "console.json"
#: The user made when ``console.users`` is empty.
GENERATED_USER = "admin"


def info_path(settings: Settings) -> Path:
    """Return where a running hub writes the console's URL (and generated password)."""
    return settings.data_dir / INFO_FILE


class ConsoleServer:
    """The console on ``settings.console.host:port``, serving the project ``project()`` returns."""

    def __init__(self, project: Callable[[], Project]) -> None:
        self.project = project
        self.settings = project().settings
        self.log = get_logger("console")
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._journal: Journal | None = None
        self._audit: AuditLog | None = None
        self._stats_engine: Engine | None = None
        self._state: ConsoleState | None = None

    @property
    def url(self) -> str:
        """The base URL it listens on."""
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def start(self) -> None:
        """Open the journal and audit table, bind, serve in a thread, write console.json (0600)."""
        from esb.console.app import create_app

        cfg = self.settings.console
        users, password = self._users()
        url = self.settings.journal.url
        journal = Journal(url, keep_bodies=self.settings.journal.keep_bodies, pool_size=4)
        audit = AuditLog(url)
        journal.connect()
        audit.connect()
        self._journal, self._audit = journal, audit
        key = cfg.session_key or secrets.token_hex(32)
        self._stats_engine = create_journal_engine(url, pool_size=cfg.threads)
        state = ConsoleState(self.project, cfg, journal, audit, users, key, self._stats_engine)
        self._state = state
        try:
            self._server = create_server(
                create_app(state), host=cfg.host, port=cfg.port, threads=cfg.threads,
                channel_timeout=30, connection_limit=64, ident="esb-console",
                clear_untrusted_proxy_headers=True,
            )
        except OSError as exc:  # ListenError: nothing of the server left open
            self.close()
            raise ConfigError(f"console: {exc} (set console.port, 0 for any free port)") from exc
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self._thread.start()
        state.health.start()  # the health page shows the last checks: the first run starts now
        info: dict[str, Any] = {"url": self.url, "pid": os.getpid()}
        if password is not None:
            info.update(user=GENERATED_USER, password=password)
        with open_file(info_path(self.settings), "write") as out:
            out.write(orjson.dumps(info))
        self.log.info("console listening", url=self.url, users=len(users),
                      info_file=str(info_path(self.settings)),
                      generated_user=GENERATED_USER if password is not None else None)

    def _users(self) -> tuple[dict[str, User], str | None]:
        """The configured users, or a generated operator and its password when none are configured."""
        configured = parse_users(self.settings.console.users)
        if configured:
            return configured, None
        password = secrets.token_urlsafe(18)
        # 144 random bits need no key stretching: a light hash keeps every hub start fast
        admin = User(GENERATED_USER, OPERATOR, hash_password(password, iterations=1000))
        return {GENERATED_USER: admin}, password

    def stop(self) -> None:
        """Stop serving, close the databases, remove console.json (if it is still ours)."""
        server, self._server = self._server, None
        if server is not None:
            stop_server(server, self._thread)
        if self._state is not None:
            self._state.health.stop()
            self._state.process_store.close()
        self.close()
        path = info_path(self.settings)
        try:
            if orjson.loads(path.read_bytes()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, orjson.JSONDecodeError):
            pass

    def close(self) -> None:
        """Close the journal and audit connections; harmless twice."""
        if self._journal is not None:
            self._journal.close()
        if self._audit is not None:
            self._audit.close()
        if self._stats_engine is not None:
            self._stats_engine.dispose()
        self._journal, self._audit, self._stats_engine = None, None, None
