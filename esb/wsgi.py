"""Stopping a waitress server cleanly: shared by the SOAP listener and the operators' console."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["stop_server"]


def stop_server(server: Any, thread: threading.Thread | None, grace: float = 5.0) -> None:
    """Stop a waitress server run in ``thread``: stop accepting, let the requests in hand finish (``grace``
    seconds at most), then close every connection and the loop's trigger, which ends the loop.

    In this order because a waitress worker that finishes a request touches its connection and the
    loop's trigger: closing them under it closes file descriptors the operating system may already have
    given to someone else (``EBADF``, or another server's socket closed). Everything that closes runs in
    the server's own loop thread (``pull_trigger``), except the trigger itself, closed once the loop ended.
    """

    from waitress import wasyncore

    def close_connections() -> None:
        for dispatcher in list(server._map.values()):
            if dispatcher is server.trigger:
                dispatcher.del_channel()  # out of the loop's map (the loop ends), closed below
            else:
                dispatcher.close()

    def stop_accepting() -> None:  # the server's own close() would close the trigger too
        wasyncore.dispatcher.close(server)

    server.trigger.pull_trigger(stop_accepting)  # the listening socket: no new connections
    server.task_dispatcher.shutdown(timeout=grace)  # the workers finish the requests in hand
    server.trigger.pull_trigger(close_connections)  # then the connections: the loop ends
    if thread is not None:
        thread.join(grace)
    # the trigger is closed last, by us: a thunk that closed it raced with its own pull (the loop ran the
    # thunk before pull_trigger wrote its byte, which then went to a closed, maybe reused, descriptor)
    server.trigger.close()
