"""A pool in a project: a route's ``to`` names it and the unchanged engine delivers through its members;
``esb lint`` names a pool's unknown members, pooled pools and bad sticky keys with file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from esb.exceptions import TransportError
from esb.lint import lint_project
from esb.message import Message
from esb.project import Project
from esb.testing import BROKER
from tests.unit.test_worker import run_until_settled

ROUTE = {
    "id": "r",
    "from": "a.in",
    "to": "oss.pool",
    "on_error": {"redeliver": {"max": 2, "initial": "1ms", "max_delay": "5ms"}, "dead_letter": "dlq.r"},
}


def write_project(tmp_path: Path, pool: dict[str, Any], routes: list[dict[str, Any]] | None = None) -> None:
    """A project with memory endpoints a.in, dlq.r, oss.a, oss.b, oss.c and the pool ``oss.pool``."""
    memory = {"adapter": "memory"}
    systems = {
        "a": {"name": "a", "endpoints": {"in": memory}},
        "dlq": {"name": "dlq", "endpoints": {"r": memory}},
        "oss": {"name": "oss", "endpoints": {"a": memory, "b": memory, "c": memory, "pool": pool}},
    }
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}, sort_keys=False))
    (tmp_path / "config" / "settings.yaml").write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "var"), "runtime": {"poll_timeout": 0.02}})
    )
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump({"routes": routes or [ROUTE]}, sort_keys=False))


def test_a_route_delivers_through_a_pool_and_survives_a_dead_member(tmp_path: Path) -> None:
    """Every message of a route to a pool reaches exactly one member, none lost while one member fails."""
    write_project(tmp_path, {"adapter": "pool", "members": ["oss.a", "oss.b", "oss.c"]})
    project = Project.load(tmp_path, environ={})
    BROKER.fail_next("oss.b", *[TransportError("oss.b is down") for _ in range(100)])
    ids = [f"m{i}" for i in range(9)]
    BROKER.feed("a.in", *(Message({"n": i}, id=i) for i in ids))
    journal = run_until_settled(project, len(ids))
    got = [m.id for name in ("oss.a", "oss.b", "oss.c") for m in BROKER.written(name)]
    assert sorted(got) == sorted(ids)
    assert BROKER.written("oss.b") == []
    assert all(journal.outcome("r", i) == "delivered" for i in ids)
    journal.close()


def test_lint_names_bad_pool_members_with_their_line(tmp_path: Path) -> None:
    """An unknown member (with a suggestion), a member that is a pool, a sticky key that does not parse."""
    write_project(
        tmp_path,
        {
            "adapter": "pool",
            "members": ["oss.a", "oss.bb", "oss.pool"],
            "strategy": "sticky",
            "sticky_key": "body.[[",
        },
    )
    findings = [f for f in lint_project(tmp_path) if "oss.pool" in f]
    assert any(
        f.startswith("config/systems.yaml:")
        and "oss.pool.members[1]: unknown endpoint 'oss.bb'" in f
        and "did you mean 'oss.b'?" in f
        for f in findings
    ), findings
    assert any("oss.pool.members[2]: oss.pool is itself a pool" in f for f in findings), findings
    assert any("oss.pool.sticky_key: invalid JMESPath expression 'body.[['" in f for f in findings), findings


def test_a_clean_pool_has_no_lint_finding(tmp_path: Path) -> None:
    """A pool of existing members with a valid sticky key lints clean."""
    write_project(
        tmp_path,
        {"adapter": "pool", "members": ["oss.a", "oss.b"], "strategy": "sticky", "sticky_key": "body.n"},
    )
    assert [f for f in lint_project(tmp_path) if "oss.pool" in f] == []


def test_esb_health_shows_an_ejected_member_and_why(tmp_path: Path) -> None:
    """The health check of a project names the pool's ejected member with its error, as esb health does."""
    from esb.ops.health import check_endpoints

    write_project(tmp_path, {"adapter": "pool", "members": ["oss.a", "oss.b"], "health": {"failures": 1}})
    project = Project.load(tmp_path, environ={})
    sink = project.adapter_for("oss.pool").sink(project.endpoint("oss.pool"), project.context("oss.pool"))
    BROKER.fail_next("oss.a", TransportError("oss.a refused the connection"))
    sink.write(Message({"n": 1}))
    [line] = [c for c in check_endpoints(project) if c.component == "endpoint oss.pool"]
    assert line.status == "degraded"
    assert "oss.a EJECTED until" in line.detail
    assert "oss.a refused the connection" in line.detail
    assert "oss.b ok" in line.detail
