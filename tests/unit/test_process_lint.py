"""Process lint: each finding names processes/<file>:line, the path, and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from esb.cli.main import cli
from esb.process.lint import process_findings
from esb.project import Project
from tests.unit.routes_fixture import FakeTransforms

ENDPOINTS: dict[str, dict[str, Any]] = {
    "crm.orders": {"adapter": "memory"},
    "rim.reserve": {"adapter": "memory"},
    "rim.release": {"adapter": "memory"},
    "oss.results": {"adapter": "memory"},
    "oss.activate": {"adapter": "queue", "queue": "oss.activate"},
    "iom.status": {"adapter": "queue", "queue": "iom.status"},
}
TRANSFORMS = ["rim/request", "rim/reply"]

GOOD = """\
process: p
version: 1
trigger:
  from: crm.orders
business_keys:
  order_id: data.id
steps:
  - name: start
    set_state: inProgress
  - name: reserve
    call: {endpoint: rim.reserve, request: rim/request, response: rim/reply}
    compensate: release
  - name: finish
    set_state: completed
compensations:
  - name: release
    call: {endpoint: rim.release}
"""


def write_project(
    root: Path,
    processes: dict[str, str],
    endpoints: dict[str, dict[str, Any]] | None = None,
    transforms: list[str] | None = None,
) -> Project:
    """Write a project with ``endpoints`` and ``transforms`` (defaults: this module's) and ``processes``
    (path under processes/ -> text); return it loaded, with fake transforms."""
    systems: dict[str, Any] = {}
    for name, config in (ENDPOINTS if endpoints is None else endpoints).items():
        system, endpoint = name.split(".", 1)
        systems.setdefault(system, {"name": system, "endpoints": {}})["endpoints"][endpoint] = config
    (root / "config").mkdir(exist_ok=True)
    (root / "config" / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}))
    (root / "config" / "settings.yaml").write_text(yaml.safe_dump({"data_dir": str(root / "var")}))
    (root / "routes.yaml").write_text("routes: []\n")
    for relative, text in processes.items():
        path = root / "processes" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    project = Project.load(root, environ={})
    names = TRANSFORMS if transforms is None else transforms
    project.__dict__["transforms"] = FakeTransforms({name: lambda body: body for name in names})
    return project


def lint(root: Path, text: str) -> list[str]:
    """Return the process findings of a project whose only process is ``text`` (in processes/p.yaml)."""
    return process_findings(write_project(root, {"p.yaml": text}))


def test_clean_process_has_no_findings(tmp_path: Path) -> None:
    """A correct definition produces no finding."""
    assert lint(tmp_path, GOOD) == []


def test_project_without_processes_has_no_findings(tmp_path: Path) -> None:
    """A project with no processes/ folder is not reported on."""
    assert process_findings(write_project(tmp_path, {})) == []


def test_unknown_endpoint(tmp_path: Path) -> None:
    """An endpoint not in config/systems.yaml is reported at its line with a suggestion."""
    assert lint(tmp_path, GOOD.replace("endpoint: rim.reserve", "endpoint: rim.reserv")) == [
        "processes/p.yaml:11: steps[1].call.endpoint: unknown endpoint 'rim.reserv' (did you mean "
        "'rim.reserve'?): declare it in config/systems.yaml or fix the name"
    ]


def test_unknown_trigger_endpoint(tmp_path: Path) -> None:
    """The trigger's endpoint must exist too."""
    assert lint(tmp_path, GOOD.replace("from: crm.orders", "from: crm.order")) == [
        "processes/p.yaml:4: trigger.from: unknown endpoint 'crm.order' (did you mean 'crm.orders'?): "
        "declare it in config/systems.yaml or fix the name"
    ]


def test_unknown_transform(tmp_path: Path) -> None:
    """A request or response transform must exist under transforms/."""
    assert lint(tmp_path, GOOD.replace("response: rim/reply", "response: rim/replay")) == [
        "processes/p.yaml:11: steps[1].call.response: unknown transform 'rim/replay' (did you mean "
        "'rim/reply'?): add it under transforms/ or fix the name"
    ]


def test_unknown_compensation(tmp_path: Path) -> None:
    """compensate must name a step under compensations:, and a compensation nobody names is reported."""
    assert lint(tmp_path, GOOD.replace("compensate: release", "compensate: relese")) == [
        "processes/p.yaml:16: compensations[0].name: compensation 'release' is never used: name it in a "
        "compensate: or remove it",
        "processes/p.yaml:12: steps[1].compensate: unknown compensation 'relese' (did you mean "
        "'release'?): add it under compensations: or fix the name",
    ]


def test_duplicate_step_name(tmp_path: Path) -> None:
    """Two steps with one name are reported at the second."""
    assert lint(tmp_path, GOOD.replace("name: finish", "name: start")) == [
        "processes/p.yaml:13: steps[2].name: duplicate step name 'start' (also steps[0]): rename one"
    ]


def test_reserved_step_name(tmp_path: Path) -> None:
    """No step may be called end (goto: end leaves a list)."""
    assert lint(tmp_path, GOOD.replace("name: finish", "name: end")) == [
        "processes/p.yaml:13: steps[2].name: 'end' is reserved (goto: end leaves a list): rename the step"
    ]


def test_call_to_one_way_endpoint(tmp_path: Path) -> None:
    """A call needs an endpoint that answers; a queue is one-way."""
    assert lint(tmp_path, GOOD.replace("endpoint: rim.reserve", "endpoint: oss.activate")) == [
        "processes/p.yaml:11: steps[1].call.endpoint: oss.activate is one-way (queue: it does not answer): "
        "a call needs a reply; use send and an await correlated by a business key"
    ]


SEND_AWAIT = GOOD.replace(
    """  - name: finish
""",
    """  - name: activate
    send: {endpoint: oss.activate}
    compensate: release
  - name: result
    await:
      from: oss.results
      reply_to: activate
      correlate: {key: order_id, match: body.orderId}
      deadline: 30m
      on_timeout: {action: retry, max_retries: 2, then: compensate}
  - name: finish
""",
)


def test_send_and_await_are_clean(tmp_path: Path) -> None:
    """A compensated send whose reply an await correlates is accepted."""
    assert lint(tmp_path, SEND_AWAIT) == []


def test_compensation_on_one_way_send_without_reply(tmp_path: Path) -> None:
    """A send that no await answers cannot be compensated: nothing tells whether it was done."""
    text = SEND_AWAIT.replace("      reply_to: activate\n", "").replace(
        "{action: retry, max_retries: 2, then: compensate}", "compensate"
    )
    assert lint(tmp_path, text) == [
        "processes/p.yaml:15: steps[2].compensate: 'activate' sends one way and no await has reply_to: "
        "activate: nothing tells whether it was done, so it cannot be compensated; await its reply or "
        "use call"
    ]


def test_retry_on_timeout_needs_reply_to(tmp_path: Path) -> None:
    """A retry on timeout sends reply_to again: an await without one cannot retry."""
    text = SEND_AWAIT.replace("      reply_to: activate\n", "").replace(
        "    compensate: release\n  - name: result", "  - name: result"
    )
    assert lint(tmp_path, text) == [
        "processes/p.yaml:20: steps[3].await.on_timeout: on_timeout retry sends reply_to again, and this "
        "await has none: name the send step in reply_to, or choose compensate, fail or alert"
    ]


def test_correlate_item_needs_a_foreach_with_a_key(tmp_path: Path) -> None:
    """correlate.item picks a foreach branch by its key: outside a foreach or with no key it is reported."""
    outside = SEND_AWAIT.replace("match: body.orderId}", "match: body.orderId, item: body.componentId}")
    assert lint(tmp_path, outside) == [
        "processes/p.yaml:20: steps[3].await.correlate.item: correlate.item picks a foreach branch, and this "
        "await is in none: remove it"
    ]
    inside = GOOD.replace(
        "  - name: finish\n",
        """  - name: each
    foreach:
      items: data.components
      steps:
        - name: result
          await:
            from: oss.results
            correlate: {key: order_id, match: body.orderId, item: body.componentId}
            deadline: 1h
  - name: finish
""",
    )
    assert lint(tmp_path, inside) == [
        "processes/p.yaml:20: steps[2].foreach.steps[0].await.correlate.item: correlate.item is matched "
        "against the item's key, and foreach 'each' has none (its items are numbered): add foreach.key "
        "(e.g. item.id)"
    ]
    keyed = inside.replace(
        "      items: data.components\n", "      items: data.components\n      key: item.id\n"
    )
    assert lint(tmp_path, keyed) == []


def test_await_without_deadline(tmp_path: Path) -> None:
    """An await without a deadline is reported: it could wait forever."""
    text = SEND_AWAIT.replace(
        "      deadline: 30m\n      on_timeout: {action: retry, max_retries: 2, then: compensate}\n", ""
    )
    assert lint(tmp_path, text) == [
        "processes/p.yaml:17: steps[3].await: an await without a deadline can wait forever: add deadline: "
        "(e.g. 30m) and on_timeout:"
    ]


def test_await_on_unknown_business_key(tmp_path: Path) -> None:
    """A reply is correlated by one of the process's business keys."""
    text = SEND_AWAIT.replace("key: order_id", "key: order")
    assert lint(tmp_path, text) == [
        "processes/p.yaml:20: steps[3].await.correlate.key: unknown business key 'order' (did you mean "
        "'order_id'?): correlate on one of order_id"
    ]


def test_reply_to_must_be_an_earlier_send(tmp_path: Path) -> None:
    """reply_to names a send step before the await; a call is no send."""
    text = SEND_AWAIT.replace("reply_to: activate", "reply_to: reserve")
    findings = lint(tmp_path, text)
    assert (
        "processes/p.yaml:19: steps[3].await.reply_to: reply_to 'reserve' is not a send step: an await "
        "answers a send"
    ) in findings


def test_invalid_expression(tmp_path: Path) -> None:
    """A business key that is not JMESPath is reported at its line."""
    findings = lint(tmp_path, GOOD.replace("order_id: data.id", "order_id: data.[id"))
    assert len(findings) == 1
    assert findings[0].startswith("processes/p.yaml:6: business_keys.order_id: invalid JMESPath expression")


GOTO = GOOD.replace(
    """  - name: finish
""",
    """  - name: skip
    goto: finish
  - name: never
    set_state: held
  - name: finish
""",
)


def test_goto_and_unreachable_step(tmp_path: Path) -> None:
    """A step after an unconditional goto that nothing jumps to is unreachable."""
    assert lint(tmp_path, GOTO) == [
        "processes/p.yaml:15: steps[3]: step 'never' is unreachable (after an unconditional goto and never "
        "jumped to): remove it or jump to it"
    ]


def test_goto_unknown_step(tmp_path: Path) -> None:
    """A goto naming no step of its list is reported with a suggestion."""
    findings = lint(tmp_path, GOTO.replace("goto: finish", "goto: finsh"))
    assert (
        "processes/p.yaml:14: steps[2].goto.step: unknown step 'finsh' (did you mean 'finish'?): fix the name"
    ) in findings


def test_conditional_goto_keeps_next_step_reachable(tmp_path: Path) -> None:
    """A goto with when may fall through: the next step is reachable, and its state flows on."""
    text = GOTO.replace("goto: finish", "goto: {step: finish, when: data.skip}")
    assert lint(tmp_path, text) == [
        "processes/p.yaml:18: steps[4].set_state: product_order: transition 'held' -> 'completed' is not "
        "allowed; allowed next states: assessingCancellation, inProgress, pending: set a state that allows "
        "it first, or change this one"
    ]


def test_point_of_no_return_unknown(tmp_path: Path) -> None:
    """on_cancel.point_of_no_return must name a top-level step."""
    text = GOOD + "on_cancel:\n  point_of_no_return: reserv\n"
    assert lint(tmp_path, text) == [
        "processes/p.yaml:19: on_cancel.point_of_no_return: unknown step 'reserv' (did you mean "
        "'reserve'?): name a top-level step"
    ]


PARALLEL = GOOD.replace(
    """  - name: finish
""",
    """  - name: both
    parallel:
      join: {count: 3}
      branches:
        - name: left
          steps: [{name: l1, call: {endpoint: rim.reserve}}]
        - name: right
          steps: [{name: r1, call: {endpoint: rim.reserve}}]
  - name: finish
""",
)


def test_join_count_larger_than_branches(tmp_path: Path) -> None:
    """A join count above the number of branches can never be met."""
    assert lint(tmp_path, PARALLEL) == [
        "processes/p.yaml:15: steps[2].parallel.join.count: join count 3 is larger than the 2 branches: it "
        "can never be met"
    ]


def test_nested_steps_are_checked(tmp_path: Path) -> None:
    """A step inside a parallel branch is checked like a top-level one."""
    findings = lint(
        tmp_path,
        PARALLEL.replace("{count: 3}", "all").replace(
            "l1, call: {endpoint: rim.reserve}", "l1, call: {endpoint: rim.nope}"
        ),
    )
    assert findings == [
        "processes/p.yaml:18: steps[2].parallel.branches[0].steps[0].call.endpoint: unknown endpoint "
        "'rim.nope': declare it in config/systems.yaml or fix the name"
    ]


def test_state_transition_not_allowed(tmp_path: Path) -> None:
    """A set_state the machine does not allow from the state before it is reported."""
    text = GOOD.replace("set_state: completed", "set_state: acknowledged")
    assert lint(tmp_path, text) == [
        "processes/p.yaml:14: steps[2].set_state: product_order: transition 'inProgress' -> 'acknowledged' "
        "is not allowed; allowed next states: assessingCancellation, completed, failed, held, partial, "
        "pending: set a state that allows it first, or change this one"
    ]


def test_unknown_state(tmp_path: Path) -> None:
    """A state the machine does not have is reported with a suggestion."""
    findings = lint(tmp_path, GOOD.replace("set_state: completed", "set_state: complete"))
    assert findings == [
        "processes/p.yaml:14: steps[2].set_state: product_order: unknown state 'complete' (did you mean "
        "'completed'?); states: acknowledged, rejected, pending, held, inProgress, cancelled, completed, "
        "failed, partial, assessingCancellation, pendingCancellation: set a state that allows it first, "
        "or change this one"
    ]


def test_failure_implies_a_transition_to_failed(tmp_path: Path) -> None:
    """A call that can fail while the order is acknowledged is reported: acknowledged cannot go to failed."""
    text = GOOD.replace("  - name: start\n    set_state: inProgress\n", "")
    assert lint(tmp_path, text) == [
        "processes/p.yaml:8: steps[0]: call 'reserve' can fail: product_order: transition 'acknowledged' "
        "-> 'failed' is not allowed; allowed next states: assessingCancellation, held, inProgress, "
        "pending, rejected: set a state that allows it first, or change this one",
        "processes/p.yaml:12: steps[1].set_state: product_order: transition 'acknowledged' -> 'completed' "
        "is not allowed; allowed next states: assessingCancellation, held, inProgress, pending, rejected: "
        "set a state that allows it first, or change this one",
    ]


def test_goto_state_flow(tmp_path: Path) -> None:
    """States reached through a backward goto are checked at its target (held cannot fail)."""
    text = GOOD.replace(
        "  - name: finish\n",
        """  - name: hold
    set_state: held
  - name: again
    goto: {step: reserve, when: data.retry}
  - name: resume
    set_state: inProgress
  - name: finish
""",
    )
    assert lint(tmp_path, text) == [
        "processes/p.yaml:10: steps[1]: call 'reserve' can fail: product_order: transition 'held' -> "
        "'failed' is not allowed; allowed next states: assessingCancellation, inProgress, pending: set a "
        "state that allows it first, or change this one"
    ]


def test_branch_machine_states(tmp_path: Path) -> None:
    """A foreach with a machine starts each sub-order in an initial state of that machine."""
    text = GOOD.replace(
        "  - name: finish\n",
        """  - name: each
    foreach:
      items: data.components
      machine: service_order
      steps:
        - name: go
          set_state: inProgress
  - name: finish
""",
    )
    assert lint(tmp_path, text) == [
        "processes/p.yaml:19: steps[2].foreach.steps[0].set_state: service_order: cannot be created in "
        "state 'inProgress'; initial states: acknowledged: set a state that allows it first, or change "
        "this one"
    ]


def test_cancel_before_point_of_no_return_implies_assessing_cancellation(tmp_path: Path) -> None:
    """With on_cancel, a step before the point of no return must stand where a cancel can begin."""
    text = GOOD.replace(
        "    set_state: inProgress\n",
        "    set_state: inProgress\n  - name: a\n    set_state: assessingCancellation\n"
        "  - name: b\n    set_state: pendingCancellation\n",
    ).replace("set_state: completed", "set_state: cancelled")
    without = [f for f in lint(tmp_path, text) if "can be cancelled" in f]
    assert without == []
    assert [f for f in lint(tmp_path, text + "on_cancel: {}\n") if "can be cancelled" in f] == [
        "processes/p.yaml:14: steps[3]: step 'reserve' can be cancelled: product_order: transition "
        "'pendingCancellation' -> 'assessingCancellation' is not allowed; allowed next states: cancelled: "
        "set a state that allows it first, or change this one",
        "processes/p.yaml:17: steps[4]: step 'finish' can be cancelled: product_order: transition "
        "'pendingCancellation' -> 'assessingCancellation' is not allowed; allowed next states: cancelled: "
        "set a state that allows it first, or change this one",
    ]


def test_lint_command_reports_process_findings(tmp_path: Path) -> None:
    """esb lint runs the process checks and exits 1 on a finding."""
    write_project(tmp_path, {"p.yaml": GOOD.replace("endpoint: rim.release", "endpoint: rim.relese")})
    (tmp_path / "transforms" / "rim").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "lint"])
    assert result.exit_code == 1, result.output
    assert (
        "processes/p.yaml:17: compensations[0].call.endpoint: unknown endpoint 'rim.relese'" in result.output
    )


def test_unknown_branch_machine(tmp_path: Path) -> None:
    """A foreach's machine must be one of esb.model.states."""
    text = GOOD.replace(
        "  - name: finish\n",
        "  - name: each\n    foreach:\n      items: data.c\n      machine: service_ordr\n"
        "      steps: [{name: go, set_state: acknowledged}]\n  - name: finish\n",
    )
    (finding,) = lint(tmp_path, text)
    assert finding.startswith(
        "processes/p.yaml:16: steps[2].foreach.machine: unknown state machine 'service_ordr' (did you mean "
        "'service_order'?)"
    )


def test_send_to_an_endpoint_the_hub_serves(tmp_path: Path) -> None:
    """A send cannot write to an endpoint the hub listens on (a SOAP service it serves)."""
    served = {
        "adapter": "soap",
        "wsdl": "config/contracts/crm.wsdl",
        "operation": "Submit",
        "listen": {
            "host": "127.0.0.1",
            "port": 18088,
            "path": "/soap/crm",
            "auth": {"users": [{"username": "u", "password_env": "P"}]},
        },
    }
    text = GOOD.replace(
        "  - name: finish\n", "  - name: tell\n    send: {endpoint: crm.served}\n  - name: finish\n"
    )
    project = write_project(tmp_path, {"p.yaml": text}, {**ENDPOINTS, "crm.served": served})
    (finding,) = process_findings(project)
    assert finding.startswith(
        "processes/p.yaml:14: steps[2].send.endpoint: a send writes to crm.served, which cannot be "
        "written to ("
    )
    assert finding.endswith("it cannot be written to): name an endpoint the hub writes to")


def test_initial_state_must_be_initial(tmp_path: Path) -> None:
    """An instance is created in one of its machine's initial states."""
    assert lint(tmp_path, GOOD.replace("version: 1\n", "version: 1\ninitial_state: inProgress\n")) == [
        "processes/p.yaml:3: initial_state: product_order: cannot be created in state 'inProgress'; initial "
        "states: acknowledged: start in one of them"
    ]


def test_trigger_endpoint_shared_with_a_route(tmp_path: Path) -> None:
    """A process does not start from an endpoint a route reads: they would share its messages."""
    write_project(tmp_path, {"p.yaml": GOOD})
    route = "routes:\n  - {id: r, from: crm.orders, to: iom.status, on_error: {dead_letter: iom.status}}\n"
    (tmp_path / "routes.yaml").write_text(route)
    project = Project.load(tmp_path, environ={})
    project.__dict__["transforms"] = FakeTransforms({name: lambda body: body for name in TRANSFORMS})
    assert process_findings(project) == [
        "processes/p.yaml:4: trigger.from: crm.orders is also the source of route r: each message would go "
        "to one of them; give the process an endpoint of its own (the route can write to it)"
    ]


def test_ignore_rule_on_an_endpoint_the_process_does_not_read(tmp_path: Path) -> None:
    """An ignore rule must name the trigger's or an await's endpoint (else it never applies), and its
    when must parse."""
    text = GOOD + (
        "ignore:\n"
        "  - {from: crm.orders, when: \"body.kind == 'draft'\", reason: drafts are not orders}\n"
        "  - {from: oss.results, reason: no await reads it here}\n"
        "  - {from: crm.orders, when: 'body.[', reason: broken}\n"
    )
    findings = lint(tmp_path, text)
    assert len(findings) == 2
    assert findings[0].startswith("processes/p.yaml:21: ignore[2].when: invalid JMESPath expression 'body.['")
    assert findings[1] == (
        "processes/p.yaml:20: ignore[1].from: oss.results is not read by this process (its trigger's or an "
        "await's from: crm.orders): the rule would never apply"
    )
