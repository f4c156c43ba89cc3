"""The 112 fault desk (障碍台), simulated: fault reports in 112's own JSON, each planned with its scenario.

A report is what transforms/fault112/report_to_canonical reads (faultNo, reportTime, accNbr, areaCode,
prodType, faultType, faultLevel, faultDesc, addr, contactPhone). Each fault is planned with what its
technicians will do (simulators/workorder.py ``SCENARIOS``), chosen by quota from a seeded shuffle as
the order mix is (simulators/process_orders.py), and the work-order system is told by ticket id before
the report is sent, so each fault's end is known in advance:

| scenario   | what the work-order system does                         | the ticket ends | escalated |
|------------|---------------------------------------------------------|-----------------|-----------|
| `resolved` | the first technician accepts, books, completes in time  | resolved        | no        |
| `reject`   | the first technician rejects; the next one does the job | resolved        | no        |
| `silent`   | the first technician never answers; reassigned at the deadline | resolved | no        |
| `late`     | the work is completed after its due time                | resolved        | yes       |
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from esb.message import Message
from simulators.receiver import QueueReceiver
from simulators.workorder import SHANGHAI, WorkOrderSystem, local

if TYPE_CHECKING:
    from collections.abc import Callable

    from esb.project import Project

ENDPOINT = "fault112.faults_out"
PROCESS = "fault_to_resolution"
ROUTE = "fault112-to-hub"
#: Where the process tells what became of a ticket: the CRM, the 10000 hotline, the supervisor.
TOLD = ("crm.ticket_status", "hotline.ticket_notices", "hub.supervisor_escalations")
#: (area code, district text) of the cities the dispatch table names.
AREAS = [
    ("0571", "杭州市西湖区文三路"), ("0574", "宁波市鄞州区天童南路"), ("0577", "温州市鹿城区车站大道"),
    ("0573", "嘉兴市南湖区中山东路"), ("0575", "绍兴市越城区解放北路"), ("0579", "金华市婺城区八一北街"),
]  # fmt: skip
#: (112 product, fault type, description) of the faults reported.
FAULTS = [("BB", "01", "光猫LOS灯红色闪烁，无法上网"), ("BB", "02", "宽带网速慢"), ("BB", "05", "光猫损坏"),
          ("ITV", "07", "电视画面卡顿"), ("PSTN", "04", "电话有杂音"), ("MOB", "06", "室内信号弱"),
          ("DDN", "01", "专线中断")]  # fmt: skip
DEFAULT_RATES = {"reject": 0.1, "silent": 0.1, "late": 0.05}


@dataclass(frozen=True)
class PlannedFault:
    """One fault report, the ticket id it becomes and what its technicians will do."""

    report: dict[str, str]
    scenario: str

    @property
    def ticket_id(self) -> str:
        """The canonical ticket's id (TT-<faultNo>)."""
        return f"TT-{self.report['faultNo']}"

    @property
    def escalated(self) -> bool:
        """Whether the supervisor must be told (the work completed after its due time)."""
        return self.scenario == "late"


def fault_report(index: int, run: str, rng: random.Random) -> dict[str, str]:
    """A plausible 112 report number ``index`` of run ``run``."""
    area, street = rng.choice(AREAS)
    product, fault_type, text = rng.choice(FAULTS)
    prefix = {"BB": "ad", "ITV": "itv", "DDN": "ddn"}.get(product, "")
    number = f"{rng.randint(0, 99_999_999):08d}"
    return {
        "faultNo": f"112-{area}-{run}-{index:05d}",
        "reportTime": local(datetime.now(SHANGHAI)),
        "accNbr": f"133{number}" if product == "MOB" else f"{prefix}{area}{number}",
        "areaCode": area,
        "prodType": product,
        "faultType": fault_type,
        "faultLevel": rng.choice("1234"),
        "faultDesc": text,
        "addr": f"{street}{rng.randint(1, 999)}号",
        "contactPhone": f"133{rng.randint(0, 99_999_999):08d}",
    }


def plan_faults(
    count: int, run: str, rates: dict[str, float] | None = None, seed: int = 112
) -> list[PlannedFault]:
    """``count`` faults, ``round(rate x count)`` of each scenario (at least one for a rate above 0)."""
    rng = random.Random(f"{seed}:{run}")  # noqa: S311 - test data, not cryptography
    scenarios: list[str] = []
    for name, rate in (rates if rates is not None else DEFAULT_RATES).items():
        scenarios += [name] * (max(1, round(rate * count)) if rate > 0 else 0)
    scenarios = scenarios[:count] + ["resolved"] * max(0, count - len(scenarios))
    rng.shuffle(scenarios)
    return [PlannedFault(fault_report(i, run, rng), s) for i, s in enumerate(scenarios)]


#: The big cities whose critical broadband faults the dispatch table gives 8 hours.
BIG_CITIES = ("0571", "0574", "0577")


def critical_broadband(faults: list[PlannedFault]) -> list[PlannedFault]:
    """The faults as critical no-service broadband faults of the big cities (8 hours: the table's shortest
    common due time), keeping each one's number and scenario."""
    return [
        PlannedFault(
            {
                **f.report,
                "areaCode": BIG_CITIES[n % 3],
                "prodType": "BB",
                "faultType": "01",
                "faultLevel": "1",
            },
            f.scenario,
        )
        for n, f in enumerate(faults)
    ]


class Fault112Sender:
    """Sends planned faults on the 112 desk's queue, telling the work-order system each one's scenario."""

    def __init__(self, project: Project, workorders: WorkOrderSystem, endpoint: str = ENDPOINT) -> None:
        from simulators.oss import QueuePublisher

        self.workorders = workorders
        self._publisher = QueuePublisher(project, endpoint)

    def send(self, faults: list[PlannedFault]) -> None:
        """Script each fault's technicians, then put its report on the queue."""
        for fault in faults:
            self.workorders.scenarios[fault.ticket_id] = fault.scenario
            self._publisher(Message(body=fault.report, id=fault.report["faultNo"], type="fault.reported"))

    def close(self) -> None:
        """Close the queue sink (may be called twice)."""
        self._publisher.close()


class TicketWatcher(QueueReceiver):
    """Consumes one of the queues the process tells (``TOLD``) and hands each body to ``show``."""

    def __init__(self, project: Project, endpoint: str, show: Callable[[str, bytes], None]) -> None:
        super().__init__(project, endpoint)
        self.show = show

    def take(self, message: Message) -> None:
        """Record the message, then show it."""
        super().take(message)
        self.show(self.endpoint, message.body_bytes())


def runs_faults(project: Project) -> bool:
    """True when the project runs fault_to_resolution, its route, and declares the queues it tells."""
    from esb.process.loader import load_processes  # late: the simulators load no process code unless used

    if PROCESS not in load_processes(project.root).names() or not all(e in project.endpoints for e in TOLD):
        return False
    return any(route.id == ROUTE and route.enabled for route in project.routes)
