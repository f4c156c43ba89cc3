"""Starting and stopping a waitress server cleanly: shared by the SOAP listener, the operators' console
and the simulated systems."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

__all__ = ["ListenError", "create_server", "stop_server"]


class ListenError(OSError):
    """A server could not listen on its address: ``str()`` names the address; ``errno`` is the system's
    (``EADDRINUSE`` when another process holds the port)."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def __str__(self) -> str:
        return f"cannot listen on {self.address}: {self.strerror}"


def create_server(app: Any, host: str, port: int, **adjustments: Any) -> Any:
    """A waitress server for ``app`` bound to ``host``:``port`` (0: any free port), not yet running
    (``server.run`` in a thread; :func:`stop_server` stops it); ``adjustments`` are waitress's
    (``threads``, ``ident``...).

    When it cannot listen (the port taken), everything opened is closed before :class:`ListenError` is
    raised: waitress opens its loop's trigger pipe and the listening socket before it binds, and its own
    ``create_server`` leaves both to the garbage collector (a ``ResourceWarning`` in whatever runs then)
    and its worker threads running. So the map and the task dispatcher are ours, and the workers start
    only once the server is bound.
    """

    from waitress import server as waitress_server
    from waitress.task import ThreadedTaskDispatcher

    dispatchers: dict[int, Any] = {}  # waitress's socket map: the trigger and the listening socket(s)
    workers = ThreadedTaskDispatcher()
    try:  # _dispatcher: waitress's keyword for a caller's task dispatcher (its own tests use it)
        server = waitress_server.create_server(
            app, map=dispatchers, _dispatcher=workers, host=host, port=port, **adjustments
        )
    except BaseException as exc:
        for dispatcher in list(dispatchers.values()):
            with contextlib.suppress(OSError):
                dispatcher.close()
        if isinstance(exc, OSError):
            raise ListenError(host, port, exc) from exc
        raise
    workers.set_thread_count(server.adj.threads)
    return server


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
