"""Hot reload: notice edited project files, lint them, and say which routes must be restarted.

The hub applies an edit only when the whole project lints clean; otherwise it logs the findings and
keeps the routes it runs. Settings (broker, journal, monitoring) are read at start only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from esb.config.routes import Route
from esb.exceptions import ConfigError
from esb.lint import Linter
from esb.project import ROUTES_FILE, SYSTEMS_FILE, Project

#: What a reload takes: the route language, systems, mappings, the canonical model and the processes
#: (any change but routes.yaml restarts every route and the process service).
WATCHED = (ROUTES_FILE, SYSTEMS_FILE, "transforms", "canonical_model", "processes")

Fingerprint = dict[str, tuple[float, int]]


def fingerprint(root: Path) -> Fingerprint:
    """Return the modification time and size of every watched file (cheap: a stat each)."""
    out: Fingerprint = {}
    for name in WATCHED:
        path = root / name
        if path.is_file():
            files = [path]
        else:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        for file in files:
            if "__pycache__" in file.parts:
                continue
            try:
                stat = file.stat()
            except OSError:
                continue
            out[str(file.relative_to(root))] = (stat.st_mtime, stat.st_size)
    return out


def content_changed(before: Fingerprint, after: Fingerprint) -> bool:
    """True when something other than routes.yaml changed (systems, transforms, model: every route)."""
    names = set(before) | set(after)
    return any(before.get(n) != after.get(n) for n in names if n != ROUTES_FILE)


def load_checked(loader: Callable[[], Project]) -> tuple[Project | None, list[str]]:
    """Load the project and lint it; return (project, []) when clean, (None, findings) otherwise."""
    try:
        project = loader()
        findings = Linter(project).run()
    except ConfigError as exc:
        return None, exc.findings or [str(exc)]
    return (None, findings) if findings else (project, [])


def changed_routes(old: list[Route], new: list[Route], *, everything: bool) -> tuple[set[str], set[str]]:
    """Return (ids to stop, ids to start): removed or changed routes stop, new or changed ones start."""
    before = {r.id: r for r in old if r.enabled}
    after = {r.id: r for r in new if r.enabled}
    stop = {rid for rid, r in before.items() if everything or after.get(rid) != r}
    start = {rid for rid, r in after.items() if everything or before.get(rid) != r}
    return stop, start
