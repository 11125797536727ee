"""The global writer endpoint: one address both regions' functions use as their database host,
as Aurora's global writer endpoint is one DNS name that follows the writer. A TCP forwarder on
loopback: each new connection goes to the server of the region that writes now; when the writer
changes (switchover, failover), open connections are cut, as the demoted writer's are in Aurora.

Written by hand: a TCP relay is a few lines and no maintained library does "forward to whatever
this function says now" (socat and haproxy forward to a fixed address)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT = 2.0


class WriterEndpoint:
    def __init__(self, port: int, target: Callable[[], int | None]) -> None:
        self.port = port
        self._target = target
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> WriterEndpoint:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, name="writer-endpoint", daemon=True).start()
        return self

    def reset(self) -> None:
        """The writer moved: every connection to the old one is cut."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        port = self._target()
        try:
            if port is None:
                raise OSError("no writer")
            server = socket.create_connection((LOOPBACK, port), timeout=CONNECT_TIMEOUT)
            server.settimeout(None)
        except OSError:
            client.close()  # as a DNS name that leads nowhere: the connect fails
            return
        with self._lock:
            self._open.update((client, server))
        done = threading.Event()
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, sink, done), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, done: threading.Event) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            if done.is_set():
                with self._lock:
                    self._open.difference_update((source, sink))
                for sock in (source, sink):
                    sock.close()
            done.set()
