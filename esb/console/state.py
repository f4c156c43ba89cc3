"""What every console request needs: the current project, the journal, the audit log, the users."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from esb.config.settings import ConsoleSettings
from esb.console.audit import AuditLog
from esb.console.figures import FiguresCache
from esb.console.security import LoginThrottle
from esb.console.stores import KeptProcessStore
from esb.console.users import User
from esb.journal import Journal
from esb.ops.health import run_checks
from esb.project import Project
from esb.runtime.monitoring import HealthWatch

#: How long a message may stay in flight before the health page calls it stuck (as ``esb health``).
STUCK_AFTER = timedelta(minutes=5)


@dataclass
class ConsoleState:
    """The console's long-lived objects, shared by the request threads."""

    project: Callable[[], Project]  # the hub's current project (it changes on reload)
    settings: ConsoleSettings
    journal: Journal
    audit: AuditLog
    users: dict[str, User]
    session_key: str
    stats_engine: Engine | None = None  # one journal engine for the figures (esb.ops.stats.compute)
    throttle: LoginThrottle = field(init=False)
    figures: FiguresCache = field(init=False)
    #: the health checks, run in the background: the health page shows the last result at once
    health: HealthWatch = field(init=False)
    #: the process key names of the current project, read once per project object (pages.search)
    key_names: dict[str, Any] = field(default_factory=dict)
    #: the process store the pages read, opened at the first use and kept (closed by the server)
    process_store: KeptProcessStore = field(default_factory=KeptProcessStore)

    def __post_init__(self) -> None:
        self.throttle = LoginThrottle(self.settings.login_attempts, self.settings.login_window)
        self.figures = FiguresCache(self.settings.figures_ttl)
        self.health = HealthWatch(lambda: run_checks(self.project(), self.journal, STUCK_AFTER))
