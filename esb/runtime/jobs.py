"""The scheduled jobs of every endpoint whose adapter reports them (``JobReporter``): batch polls and flushes.

Read by ``/health/ready`` (the running hub) and ``esb health`` (an operator's command).
"""

from __future__ import annotations

from typing import Any

from esb.exceptions import EsbError
from esb.project import Project
from esb.typing import JobReporter, capability


def scheduled_jobs(project: Project) -> dict[str, list[dict[str, Any]]]:
    """Return ``{endpoint: [job, ...]}`` from every adapter offering ``jobs(endpoint, context)``.

    Each job has ``job``, ``schedule``, ``last_run``, ``outcome``, ``next_run`` (datetimes or None),
    ``overdue``; an adapter that fails to answer gives ``[{"job": "?", "error": ...}]``.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for name, endpoint in sorted(project.endpoints.items()):
        probe = capability(project.adapter_for(name), JobReporter)
        if probe is None:
            continue
        try:
            jobs = probe.jobs(endpoint, project.context(name))
        except (EsbError, OSError) as exc:
            jobs = [{"job": "?", "error": str(exc)}]
        if jobs:
            out[name] = jobs
    return out
