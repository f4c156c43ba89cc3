"""The ``esb`` entry point defers the cyclic collector until the project is loaded, then restores it."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from esb import startup

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The collector's thresholds before the test, put back after it (and no deferral left pending)."""
    saved = gc.get_threshold()
    yield saved
    startup._saved = None
    gc.set_threshold(*saved)


def test_defer_raises_the_first_threshold_and_end_restores_all(thresholds: tuple[int, int, int]) -> None:
    """Deferring raises only the first generation's threshold; ending the start puts all three back."""
    startup.defer_collection()
    assert gc.get_threshold() == (startup.STARTUP_THRESHOLD, *thresholds[1:])
    startup.end_startup()
    assert gc.get_threshold() == thresholds


def test_defer_twice_still_restores_the_original_thresholds(thresholds: tuple[int, int, int]) -> None:
    """A second deferral does not take the raised threshold for the original one."""
    startup.defer_collection()
    startup.defer_collection()
    startup.end_startup()
    assert gc.get_threshold() == thresholds


def test_end_startup_without_defer_changes_nothing(
    thresholds: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the entry point (tests, embedding) a project load neither freezes nor resets the collector."""
    freezes: list[bool] = []  # gc.freeze() calls: the freeze count itself falls when frozen objects die
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(True))
    gc.set_threshold(1234, 5, 6)
    startup.end_startup()
    assert gc.get_threshold() == (1234, 5, 6)
    assert freezes == []


def test_a_cold_command_restores_the_collector_once_the_project_is_loaded(tmp_path: Path) -> None:
    """Through the entry point, a command that loads the project runs on with Python's thresholds and the
    start's objects frozen; during the start the threshold was the raised one."""
    code = (
        "import gc, sys\n"
        "from esb import project\n"
        "from esb.cli.main import main\n"
        "seen = []\n"
        "load = project.Project.load.__func__\n"
        "def spy(cls, *a, **k):\n"
        "    seen.append(gc.get_threshold()[0])\n"
        "    return load(cls, *a, **k)\n"
        "project.Project.load = classmethod(spy)\n"
        "default = gc.get_threshold()\n"
        "try:\n"
        "    main(['dlq', 'list', '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(seen, gc.get_threshold() == default, gc.get_freeze_count() > 10000, file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), ESB_DATA_DIR=str(tmp_path / "var"))
    env.pop("ESB_ENV", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == f"[{startup.STARTUP_THRESHOLD}] True True"
