"""A project directory's settings alone, and its routes' sources, without loading the whole project.

``Project.load`` reads and checks every file (systems with each endpoint's adapter model, routes with
their steps). Operators' commands that only read the journal (``esb trace``) need the settings and, to
name the system a message came from, each route's ``from``: these functions give them that much, so a
cold command does not pay for the rest (see bench/cli_bench.py).
"""

from __future__ import annotations

from pathlib import Path

from esb import files
from esb.config.settings import Settings, load_settings
from esb.config.yamlpos import load_yaml
from esb.exceptions import ConfigError

ROUTES_FILE = "routes.yaml"
SYSTEMS_FILE = "config/systems.yaml"
#: The product catalogue (:mod:`esb.config.catalog`), named here so that the ``decompose`` step kind can
#: say where it lives without importing the catalogue's models.
CATALOG_FILE = "config/catalog.yaml"
#: The process definitions' folder (:mod:`esb.process.loader`): ``processes/<name>.yaml`` is a process's
#: current version.
PROCESSES_DIR = "processes"


def project_settings(
    root: Path, env: str | None = None, environ: dict[str, str] | None = None
) -> tuple[Path, Settings]:
    """The resolved project directory and its settings; the file modes of ``settings.files`` applied.

    Raises ConfigError when ``root`` has no routes.yaml (not a project directory) or the settings are
    invalid, as ``Project.load`` does.
    """
    root = root.resolve()
    if not (root / ROUTES_FILE).exists():
        raise ConfigError(f"{root}: no {ROUTES_FILE} here: run from a project directory or pass --project")
    settings = load_settings(root, env, environ)
    files.configure(files.modes_for(settings.files.mode, settings.files.group))
    return root, settings


def route_sources(root: Path) -> dict[str, str]:
    """Each route's source endpoint (``from``) by route id, read from routes.yaml without validating
    the routes (``esb lint`` does that); entries without a text id and source are left out."""
    doc = load_yaml(root / ROUTES_FILE, display=ROUTES_FILE)
    routes = doc.data.get("routes") if isinstance(doc.data, dict) else None
    sources: dict[str, str] = {}
    for route in routes if isinstance(routes, list) else []:
        if not isinstance(route, dict):
            continue
        route_id, source = route.get("id"), route.get("from")
        if isinstance(route_id, str) and isinstance(source, str):
            sources.setdefault(route_id, source)
    return sources


def defines_processes(root: Path) -> bool:
    """Whether the project at ``root`` defines processes: it has a ``processes/<name>.yaml``.

    The definitions are not loaded (their models cost ~20-40 ms of a cold ``esb health``, which only asks
    whether to read the process tables); a file that does not validate counts too (``esb lint`` reports
    it), so the tables are read and shown rather than silently skipped.
    """
    folder = root / PROCESSES_DIR
    return folder.is_dir() and any(path.is_file() for path in folder.glob("*.yaml"))
