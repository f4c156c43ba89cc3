"""Fingerprints of process versions, recorded in ``processes/.versions.lock``, so lint can tell when a
definition changed without its ``version`` being raised.

The fingerprint is a SHA-256 of the definition's normalised content (every key, defaults filled in),
leaving out ``version`` and every ``description``: rewording a comment is not a new version, changing a
step, a timeout or a state is. ``python -m esb.process.versions [PROJECT]`` records the fingerprint of every
loaded version (keeping the entries of versions no longer on disk); lint then compares. Without a lock
file there is nothing to compare and nothing is reported.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import orjson

from esb.config.yamlpos import load_yaml
from esb.exceptions import ConfigError
from esb.process.definition import Process
from esb.process.loader import PROCESSES_DIR, ProcessCatalog, load_processes

LOCK_FILE = f"{PROCESSES_DIR}/.versions.lock"
_HEADER = (
    "# The fingerprint of each recorded process version, written by `python -m esb.process.versions`.\n"
    "# esb lint reports a definition whose content changed while its version stayed the same.\n"
)

Lock = dict[str, dict[int, str]]


def fingerprint(process: Process) -> str:
    """Return ``sha256:<hex>`` of the definition's content, without ``version`` and descriptions."""
    content = _without_descriptions(process.model_dump(mode="json", by_alias=True, exclude={"version"}))
    return "sha256:" + hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


def read_lock(root: Path) -> Lock | None:
    """Return the recorded fingerprints (None when the project has no lock file)."""
    path = root / LOCK_FILE
    if not path.exists():
        return None
    raw = load_yaml(path, display=LOCK_FILE).data or {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{LOCK_FILE}:1: expected name -> {{version: fingerprint}}: rewrite it")
    try:
        return {str(name): {int(v): str(f) for v, f in versions.items()} for name, versions in raw.items()}
    except ValueError as exc:
        raise ConfigError(f"{LOCK_FILE}:1: a version is not a number ({exc}): rewrite it") from exc


def record(root: Path, catalog: ProcessCatalog | None = None) -> Lock:
    """Write the fingerprint of every loaded version into the lock file; return what it now holds."""
    catalog = catalog if catalog is not None else load_processes(root)
    if catalog.findings:
        raise ConfigError("fix the process definitions first", findings=catalog.findings)
    lock: Lock = read_lock(root) or {}
    for definition in catalog.all():
        lock.setdefault(definition.process.process, {})[definition.process.version] = fingerprint(
            definition.process
        )
    ordered = {name: dict(sorted(lock[name].items())) for name in sorted(lock)}
    lines = [_HEADER]
    for name, versions in ordered.items():
        lines.append(f"{name}:\n")
        lines.extend(f'  {version}: "{value}"\n' for version, value in versions.items())
    (root / LOCK_FILE).write_text("".join(lines), encoding="utf-8")
    return ordered


def main(argv: list[str]) -> int:
    """``python -m esb.process.versions [PROJECT]``: record the fingerprints; 2 on a definition error."""
    root = Path(argv[0]) if argv else Path()
    try:
        lock = record(root)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{LOCK_FILE}: {sum(len(v) for v in lock.values())} version(s) of {len(lock)} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
