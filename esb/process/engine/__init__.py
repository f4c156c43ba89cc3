"""The process engine (issue 15): runs :mod:`esb.process` definitions durably in the journal's database.

``tables``: the five tables (migration ``0003_processes``); ``store``: the database, pinned definitions,
leases and the fence; ``inbox``: :func:`deliver_reply` and :func:`request_cancel`; ``feed``: which
process and key a reply on an endpoint is for; ``runner``: starts instances and advances due ones;
``undo``: compensation and the end of an instance; ``retry``: an operator's retry of a stuck or alert
instance (``esb process retry``); ``calls`` and ``resources``: calls out through the project's
endpoints. See docs/processes.md, "The engine".
"""

from esb.process.engine.feed import correlations, feed
from esb.process.engine.inbox import CancelAnswer, deliver_reply, request_cancel
from esb.process.engine.resources import ProjectResources, Resources
from esb.process.engine.runner import Runner
from esb.process.engine.store import Claim, LeaseLostError, ProcessStore

__all__ = [
    "CancelAnswer",
    "Claim",
    "LeaseLostError",
    "ProcessStore",
    "ProjectResources",
    "Resources",
    "Runner",
    "correlations",
    "deliver_reply",
    "feed",
    "request_cancel",
]
