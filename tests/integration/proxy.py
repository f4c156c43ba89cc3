"""A loopback TCP proxy that can cut the connection after N bytes: a connection dropped mid-transfer."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to a target; with ``cut_after`` set, drops every connection once that
    many bytes went from client to server or back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_after: int | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._closed = False
        self._live: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._live += [client, server]
            state = {"bytes": 0}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b, client, server, state), daemon=True).start()

    def _pipe(
        self,
        src: socket.socket,
        dst: socket.socket,
        client: socket.socket,
        server: socket.socket,
        state: dict[str, int],
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                state["bytes"] += len(data)
                if self.cut_after is not None and state["bytes"] > self.cut_after:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        """Drop every connection made so far, now (a broker or server that went away mid-conversation)."""
        for sock in self._live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting."""
        self._closed = True
        self.listener.close()
