"""The operators' commands start cold without what they do not use, and answer as before."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from esb.cli.main import cli
from esb.config.projectdir import route_sources
from esb.journal import Journal
from esb.journal.migrate import _at_head, head, upgrade
from esb.journal.revisions import plain_head
from esb.message import Message
from esb.ops.dlq import PROCESS_PREFIX
from esb.runtime.process_journal import ROUTE_PREFIX

ROOT = Path(__file__).resolve().parents[2]


SYSTEMS = (ROOT / "config" / "systems.yaml").read_text()
PEER_PORTS = sorted(set(re.findall(r"\$\{(ESB_[A-Z_]*PORT):-", SYSTEMS)))
"""The environment variables that give the project's peers their ports (``${ESB_RIM_PORT:-8091}``...)."""


@contextmanager
def _peers_refusing() -> Iterator[dict[str, str]]:
    """Every peer port of the project pointed at a loopback socket that is bound but never listens, so a
    connection is refused even when a `make run` hub and its simulated peers hold the default ports."""
    with ExitStack() as stack:
        ports = {}
        for name in PEER_PORTS:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports[name] = str(sock.getsockname()[1])
        yield ports


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code`` in this repository."""
    with _peers_refusing() as ports:
        env = dict(os.environ, PYTHONPATH=str(ROOT), ESB_DATA_DIR=str(tmp_path / "var"), **ports)
        env.pop("ESB_ENV", None)
        done = subprocess.run(
            [sys.executable, "-c", f"{code}\nimport sys; print('\\n'.join(sorted(sys.modules)))"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
    return set(done.stdout.split())


def test_the_peer_ports_are_found_in_the_systems_file() -> None:
    """The cold-command tests isolate themselves from running peers through every ``ESB_*_PORT`` there."""
    assert {"ESB_SOAP_PORT", "ESB_BILLING_PORT", "ESB_RIM_PORT"} <= set(PEER_PORTS)


def test_the_plain_head_is_alembics_head() -> None:
    """The head read from the revision files without Alembic is the one Alembic computes."""
    assert plain_head() == head()


def test_at_head_is_false_on_a_fresh_database_and_true_after_upgrade(tmp_path: Path) -> None:
    """A fresh database is migrated; one already at head is recognised with a query, no Alembic."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'j.db'}")
    with engine.begin() as conn:
        assert not _at_head(conn)
        upgrade(conn)
    with engine.begin() as conn:
        assert _at_head(conn)
    engine.dispose()


@pytest.mark.parametrize("adapter", ["queue", "soap", "batch", "rest"])
def test_an_adapter_package_imports_its_source_and_sink_on_first_use(adapter: str, tmp_path: Path) -> None:
    """Importing an adapter (for its endpoint model) leaves its source and sink modules unloaded."""
    modules = _modules_after(f"import adapters.{adapter}", tmp_path)
    assert f"adapters.{adapter}.sink" not in modules
    assert f"adapters.{adapter}.source" not in modules


def test_lazy_exports_give_the_classes_and_refuse_unknown_names() -> None:
    """`from adapters.soap import SOAPSink` still works; an unknown name is an AttributeError."""
    import adapters.soap
    from adapters.soap import SOAPSink
    from adapters.soap.sink import SOAPSink as Direct

    assert SOAPSink is Direct
    with pytest.raises(AttributeError, match="SOAPNothing"):
        _ = adapters.soap.SOAPNothing


#: What reading the settings used to import: pydantic-settings (asyncio with it) and apscheduler to check
#: a plain cron schedule (esb/config/sources.py, esb/config/cron.py).
SETTINGS_ONLY = ("pydantic_settings", "dotenv", "asyncio", "apscheduler")


def test_a_cold_trace_loads_neither_the_project_nor_alembic(tmp_path: Path) -> None:
    """`esb trace` imports no adapter, route model, transform compiler or Alembic (once migrated), nor
    pydantic-settings, asyncio or apscheduler, and on an existing SQLite journal neither SQLAlchemy nor
    ruamel.yaml."""
    code = (
        "from esb.cli.main import main\n"
        "for _ in range(2):\n"  # the first run creates and migrates the journal
        "    try:\n"
        "        main(['trace', 'nothing-here'])\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    first = _modules_after(code, tmp_path)
    assert not {m for m in first if m.startswith(("adapters", "zeep", "esb.transforms.registry"))}
    assert not {"esb.project", "esb.config.routes", "esb.config.systems"} & first
    again = _modules_after(code.replace("range(2)", "range(1)"), tmp_path)
    assert "alembic" not in again
    assert not {m for m in again if m.startswith(("sqlalchemy", "ruamel"))}  # sqlite3 and libyaml read
    assert not {m for m in again if m.startswith(SETTINGS_ONLY)}


def test_trace_names_the_system_a_route_reads_from(tmp_path: Path) -> None:
    """`esb trace` says which system a message came from, read from routes.yaml, as before."""
    data = tmp_path / "var"
    data.mkdir()
    with Journal(f"sqlite:///{data}/journal.db") as journal:
        journal.received("crm-order-to-iom", Message(body=b"<x/>", id="cold-1"))
    result = CliRunner().invoke(
        cli, ["--project", str(ROOT), "trace", "cold-1", "--json"], env={"ESB_DATA_DIR": str(data)}
    )
    assert result.exit_code == 0, result.output
    assert [(s["state"], s["system"]) for s in json.loads(result.output)["steps"]] == [("received", "crm")]


def test_route_sources_map_each_route_to_its_source() -> None:
    """Route ids map to their `from` endpoint as the validated project has them."""
    from esb.project import Project

    project = Project.load(ROOT)
    sources = route_sources(ROOT)
    assert sources == {route.id: route.from_ for route in project.routes}


def test_the_process_dead_letter_prefix_is_the_process_journals() -> None:
    """esb dlq names process groups with the prefix the process journal writes."""
    assert PROCESS_PREFIX == ROUTE_PREFIX


def test_a_cold_dlq_list_reads_without_sqlalchemy_or_ruamel(tmp_path: Path) -> None:
    """`esb dlq list` on an existing SQLite journal counts through sqlite3 and reads YAML with libyaml;
    reading the settings imports neither pydantic-settings nor apscheduler (nor asyncio)."""
    code = (
        "from esb.cli.main import main\n"
        "for _ in range(2):\n"  # the first run creates and migrates the journal
        "    try:\n"
        "        main(['dlq', 'list'])\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    first = _modules_after(code, tmp_path)
    assert "sqlalchemy" in first  # the journal was created through the Journal
    again = _modules_after(code.replace("range(2)", "range(1)"), tmp_path)
    assert not {m for m in again if m.startswith(("sqlalchemy", "ruamel", "alembic", *SETTINGS_ONLY))}


def test_a_cold_dlq_list_counts_and_peeks_the_sqlite_queues_without_kombu(tmp_path: Path) -> None:
    """`esb dlq list` on the SQLite broker reads the queue file through sqlite3: kombu, py-amqp,
    structlog and the product catalogue's models stay unloaded, and a waiting dead letter is still
    listed (exit 1)."""
    from adapters.queue import QueueAdapter, QueueEndpoint
    from esb.config.settings import Settings
    from esb.context import AdapterContext

    settings = Settings.model_validate({"broker": {"url": f"sqlite:///{tmp_path}/var/queues.db"}})
    endpoint = QueueEndpoint.model_validate({"adapter": "queue", "queue": "esb.dlq.crm-order-to-iom"})
    sink = QueueAdapter().sink(endpoint, AdapterContext(settings=settings, project_dir=ROOT, endpoint="x.y"))
    sink.connect()
    sink.write(
        Message(body=b"<x/>", id="dead-1", headers={"esb-route": "crm-order-to-iom", "esb-error": "boom"})
    )
    sink.close()
    code = (
        "from esb.cli.main import main\n"
        "try:\n"
        "    code = main(['dlq', 'list', 'crm-order-to-iom'])\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('exit-code-' + str(code))\n"
    )
    printed = _modules_after(code, tmp_path)  # the output's words and the modules loaded
    assert {"dead-1", "boom", "exit-code-1"} <= printed
    assert not {m for m in printed if m.startswith(("kombu", "amqp", "structlog", "esb.config.catalog"))}


def test_a_cold_health_reads_without_sqlalchemy_the_process_engine_or_the_batch_inbound_side(
    tmp_path: Path,
) -> None:
    """`esb health` on an existing SQLite journal reads it (counts, route control, stuck messages, process
    counts) through sqlite3 and still prints every line and its verdict: SQLAlchemy, the process engine,
    the batch adapter's source, sink and state store, the monitoring listener, urllib.request, structlog,
    ftplib, paramiko, pydantic-settings, the process definitions' models and, the project's crontabs being
    plain, apscheduler (and asyncio with it) stay unloaded."""
    code = (
        "from esb.cli.main import main\n"
        "for _ in range(2):\n"  # the first run creates and migrates the journal
        "    try:\n"
        "        code = main(['health'])\n"
        "    except SystemExit as exit:\n"
        "        code = exit.code\n"
        "    print('exit-code-' + str(code))\n"
    )
    first = _modules_after(code, tmp_path)
    assert "sqlalchemy" in first  # the journal was created through the Journal
    again = _modules_after(code.replace("range(2)", "range(1)"), tmp_path)
    assert {"overall:", "journal", "reachable", "processes"} <= again
    assert again & {"exit-code-0", "exit-code-1"}  # ok or degraded (no hub runs), never down
    unloaded = (
        "sqlalchemy", "alembic", "esb.process.engine", "esb.runtime.control", "esb.runtime.monitoring",
        "adapters.batch.source", "adapters.batch.sink", "adapters.batch.store", "urllib.request",
        "http.server", "structlog", "ftplib", "paramiko", "pydantic_settings", "esb.process.definition",
        "esb.process.loader", "apscheduler", "asyncio",
    )  # fmt: skip
    assert not {m for m in again if m.startswith(unloaded)}


def test_a_project_defines_processes_when_it_has_a_current_definition_file(tmp_path: Path) -> None:
    """`esb health` reads the process tables when processes/<name>.yaml exists, valid or not (as the
    loader's catalogue names each valid one); older versions or examples alone are not processes."""
    from esb.config.projectdir import defines_processes
    from esb.process.loader import load_processes

    assert not defines_processes(tmp_path)
    (tmp_path / "processes" / "examples").mkdir(parents=True)
    (tmp_path / "processes" / "examples" / "x.yaml").write_text("process: x\n")
    (tmp_path / "processes" / "old").mkdir()
    (tmp_path / "processes" / "old" / "v1.yaml").write_text("process: old\n")
    assert not defines_processes(tmp_path)
    assert defines_processes(ROOT) == bool(load_processes(ROOT).names())
    (tmp_path / "processes" / "broken.yaml").write_text("process: [\n")
    assert defines_processes(tmp_path)


class _AnyDatetime(type):
    """A metaclass that lets ``isinstance(x, Frozen)`` mean ``isinstance(x, datetime)``."""

    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, datetime)


def _frozen_at(fixed: datetime) -> type[datetime]:
    """``datetime`` whose ``now`` is always ``fixed`` (an aware instant)."""

    class Frozen(datetime, metaclass=_AnyDatetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return fixed.astimezone(tz) if tz is not None else fixed.replace(tzinfo=None)

    return Frozen


@pytest.mark.parametrize(
    "fixed",
    [datetime(2026, 12, 7, 17, 29, 59, 900_000, tzinfo=UTC), datetime(2027, 2, 28, 19, 0, tzinfo=UTC)],
    ids=["before-a-flush", "sunday"],
)
def test_health_prints_the_same_as_with_apscheduler(
    fixed: datetime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`esb health` and `esb health --json` print the same bytes when the crons' next runs come from
    esb.config.cron as when apscheduler computes them (as before), at the same fixed time."""
    import adapters.batch.health
    import esb.ops.health
    from esb.config import cron

    for module in (esb.ops.health, adapters.batch.health):
        monkeypatch.setattr(module, "datetime", _frozen_at(fixed))
    printed = []
    command = ["--project", str(ROOT), "health"]
    with _peers_refusing() as ports:
        env = {"ESB_DATA_DIR": str(tmp_path / "var"), **ports}
        CliRunner().invoke(cli, ["--project", str(ROOT), "health"], env=env)  # creates the journal
        for apscheduler in (False, True):
            if apscheduler:
                monkeypatch.setattr(cron, "_plain", lambda expression: None)  # every one to apscheduler
            runs = [CliRunner().invoke(cli, [*command, *extra], env=env) for extra in ([], ["--json"])]
            printed.append([run.output for run in runs])
    assert printed[0] == printed[1]
    assert "cron '0 3 * * 0', next " in printed[0][0]
    flushes = [c["data"] for c in json.loads(printed[0][1])["checks"] if c["component"].endswith(" flush")]
    assert flushes
    assert all(data["next_run"] for data in flushes)
