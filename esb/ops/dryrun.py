"""``esb replay --dry-run``: what today's route would send for a journaled message, and the diff.

The route's steps (``esb.processors.build_pipeline``) run on the original bytes in this process, with no
sink and no call-out: an ``enrich`` step is refused rather than calling a live system. Each output is
compared with the body journaled with its ``delivered`` event (what was sent then), per endpoint.
"""

from __future__ import annotations

import difflib
from typing import Any

import orjson

from esb.exceptions import EsbError, TransportError
from esb.journal import Journal, MessageRecord
from esb.message import Message
from esb.ops.replay import Outcome, rebuild
from esb.project import Project
from esb.runtime.outlet import Outlet
from esb.runtime.pipeline import build_pipeline


class _NoCallOut:
    """The requester a dry run gives ``enrich`` steps: it refuses, so nothing live is called."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def connect(self) -> None:
        """Nothing to connect."""

    def request(self, message: Message, timeout: float) -> Message:
        """Refuse: a dry run does not call other systems."""
        raise TransportError(f"dry run: enrich from {self.endpoint} is not called", endpoint=self.endpoint)

    def close(self) -> None:
        """Nothing to close."""


def pretty(body: bytes | None) -> str:
    """Return a body as comparable text: JSON re-indented with sorted keys, other text as it is."""
    if body is None:
        return ""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


class DryRun:
    """Runs today's steps of routes over journaled messages, without sending anything."""

    def __init__(self, project: Project, journal: Journal) -> None:
        self.project = project
        self.journal = journal
        self._routes: dict[str, tuple[Any, Any, Any, Outlet]] = {}

    def _compiled(self, route_id: str) -> tuple[Any, Any, Any, Outlet]:
        if route_id not in self._routes:
            route = self.project.route(route_id)
            pre, aggregator, post = build_pipeline(self.project, route, _NoCallOut)
            outlet = Outlet(self.project, route, self.journal)  # destinations() only: nothing is written
            self._routes[route_id] = (pre, aggregator, post, outlet)
        return self._routes[route_id]

    def run(self, record: MessageRecord) -> Outcome:
        """Return what the route would send today for ``record``, each output with its diff."""
        body = self.journal.body(record.id)
        if body is None:
            return Outcome(record.id, record.route, "skipped", reason="no body kept (journal.keep_bodies)")
        try:
            pre, aggregator, _post, outlet = self._compiled(record.route)
            outputs = pre(rebuild(record, body))
            note = "aggregate step: outputs shown before aggregation" if aggregator is not None else None
            if not outputs:
                return Outcome(record.id, record.route, "dry-run", reason="filtered out today", outputs=[])
            described = [self._describe(record.route, out, outlet) for out in outputs]
        except EsbError as exc:
            return Outcome(record.id, record.route, "failed", reason=f"{type(exc).__name__}: {exc}")
        return Outcome(record.id, record.route, "dry-run", reason=note, outputs=described)

    def _describe(self, route_id: str, output: Message, outlet: Outlet) -> dict[str, Any]:
        today = pretty(output.body_bytes())
        sent = self._sent_before(route_id, output.id)
        entries = []
        for endpoint in outlet.destinations(output) if outlet.route.to is not None else ["(reply)"]:
            before = sent.get(endpoint)
            mapped = outlet.for_endpoint(endpoint, output)  # a to: item with its own transform
            body = today if mapped is output else pretty(mapped.body_bytes())
            diff = (
                ""
                if before is None
                else "".join(
                    difflib.unified_diff(
                        before.splitlines(keepends=True),
                        body.splitlines(keepends=True),
                        fromfile=f"sent then to {endpoint}",
                        tofile="today",
                    )
                )
            )
            entries.append(
                {
                    "endpoint": endpoint,
                    "sent_before": before is not None,
                    "changed": before is not None and before != body,
                    "diff": diff,
                }
            )
        return {"id": output.id, "headers": output.headers, "body": today, "destinations": entries}

    def _sent_before(self, route_id: str, message_id: str) -> dict[str, str]:
        """Return the last body journaled as delivered to each endpoint for ``message_id``."""
        out: dict[str, str] = {}
        for event in self.journal.history(message_id):
            if event.route == route_id and event.state == "delivered" and event.endpoint and event.has_body:
                out[event.endpoint] = pretty(self.journal.event_body(event.id, event.message_id))
        return out

    def close(self) -> None:
        """Close the compiled pipelines."""
        for pre, _agg, post, _outlet in self._routes.values():
            pre.close()
            post.close()
