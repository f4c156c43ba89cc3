"""`esb demo`: when the hub fails to start, the operator sees that error, not a scenario's cleanup error."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

import simulators.demo as demo
from esb.runtime.hub import Hub

ROOT = Path(__file__).resolve().parents[2]


class BrokerDownError(RuntimeError):
    """The error a hub start meets in these tests."""


def _fail_to_start(self: Hub) -> None:
    raise BrokerDownError("cannot reach the broker at 127.0.0.1:1")


def test_a_hub_that_fails_to_start_reaches_the_operator_with_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo raises the hub's start error itself; never-started threads stop quietly."""
    monkeypatch.setattr(Hub, "start", _fail_to_start)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the demo sets its environment: keep it here
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(BrokerDownError, match="cannot reach the broker") as raised:
        demo.run_demo(ROOT, None, messages=1, timeout=5)
    assert not any("cannot join thread" in note for note in getattr(raised.value, "__notes__", []))


def test_stop_all_calls_every_stop_and_keeps_the_real_failure() -> None:
    """A failing stop does not skip the later ones, and with an error in flight it is only a note on it."""
    called: list[str] = []

    def broken() -> None:
        called.append("broken")
        raise RuntimeError("cannot join thread before it is started")

    failure = BrokerDownError("hub did not start")
    demo.stop_all([broken, lambda: called.append("hub")], failure)
    assert called == ["broken", "hub"]
    assert failure.__notes__ == [
        "while stopping the demo: RuntimeError: cannot join thread before it is started"
    ]


def test_stop_all_raises_a_stop_error_when_nothing_else_failed() -> None:
    """Without an error in flight, the first stop's error is raised after every stop ran."""
    called: list[str] = []

    def broken() -> None:
        raise RuntimeError("stuck")

    with pytest.raises(RuntimeError, match="stuck"):
        demo.stop_all([broken, lambda: called.append("hub")], None)
    assert called == ["hub"]
