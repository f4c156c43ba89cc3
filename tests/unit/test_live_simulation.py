"""`make run` and `esb demo`: the NCR feed sends its intended mix; the demo says where its state lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from esb.project import Project
from simulators.batch_scenarios import NCR_FILE_RECORDS, NCRExtractScenario
from simulators.crm import PlannedMessage
from simulators.demo import state_lines
from simulators.live import FILE_EVERY, LiveSimulation

ROOT = Path(__file__).resolve().parents[2]


def test_a_live_ncr_file_is_one_whole_extract_of_good_customers_and_a_few_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each file the simulation sends plans one whole extract file delivered and about 1 in 9 invalid."""
    project = Project.load(ROOT, environ={"ESB_DATA_DIR": str(tmp_path / "var")})
    simulation = LiveSimulation(project)
    [scenario] = [s for s in simulation.scenarios if isinstance(s, NCRExtractScenario)]
    sent: list[PlannedMessage] = []
    scenario.send = sent.extend  # type: ignore[method-assign]  # record instead of publishing
    index = simulation.scenarios.index(scenario)
    simulation._tick(scenario, index, index % FILE_EVERY, "t", {})
    expected = [p.expected for p in sent]
    assert expected.count("delivered") == NCR_FILE_RECORDS
    assert 1 <= expected.count("dead_lettered") <= len(sent) // 5
    mix = f"({expected.count('dead_lettered')} expect dead_lettered, {NCR_FILE_RECORDS} expect delivered)"
    assert mix in capsys.readouterr().out


def test_demo_state_lines_name_the_data_folder_journal_queues_and_exchange(tmp_path: Path) -> None:
    """The lines `esb demo` prints first say where its state lives, with broker passwords masked."""
    environ = {
        "ESB_DATA_DIR": str(tmp_path / "demo"),
        "ESB_BROKER__URL": "pyamqp://esb:s3cret@127.0.0.1:5672//",
    }
    lines = state_lines(Project.load(ROOT, environ=environ))
    text = "\n".join(lines)
    assert f"data folder  {tmp_path / 'demo'}" in text
    assert f"journal      sqlite:///{tmp_path / 'demo'}/journal.db" in text
    assert "queues       pyamqp://esb:***@127.0.0.1:5672//" in text
    assert "s3cret" not in text
    assert f"exchange     {tmp_path / 'demo' / 'exchange'}" in text
