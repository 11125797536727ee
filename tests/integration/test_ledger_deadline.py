"""A stuck database ends the invocation in a clean transient failure before Lambda's deadline:
connect, statements and lock waits are all bounded by the time the invocation has left.

"Before the deadline" is read from the Lambda context itself (CountdownContext runs down as
Lambda's does): when the handler gives up, the context must still have time left, i.e. Lambda
would not have killed it mid-call."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from payment_processor.handler import lambda_handler
from shared.errors import TransientError
from tests.conftest import ledger_rows
from tests.integration.scenario import CountdownContext, charge, refund

pytestmark = pytest.mark.integration

BUDGET_SECONDS = 6.0  # what the function has left; the processor keeps 2 s of it (margin)


def _nothing_written_for(sandbox: Any, payment_id: str) -> None:
    assert ledger_rows(
        sandbox.mariadb, "SELECT COUNT(*) FROM payments WHERE payment_id = %s", payment_id
    ) == [(0,)]
    assert sandbox.session_item(payment_id) is None
    assert sandbox.parked() == []


def test_a_refund_waiting_on_its_locked_charge_gives_up_in_time(
    sandbox: Any, lambda_context: Any
) -> None:
    assert lambda_handler(charge("pay-lock-1"), lambda_context)["outcome"] == "PROCESSED"
    with sandbox.mariadb.root("payments") as holder, holder.cursor() as cur:
        holder.begin()  # the administrative connection autocommits: hold the lock explicitly
        cur.execute("SELECT 1 FROM payments WHERE payment_id = 'pay-lock-1' FOR UPDATE")
        context = CountdownContext(BUDGET_SECONDS)
        with pytest.raises(TransientError):
            lambda_handler(refund("ref-lock-1", "pay-lock-1", 100), context)
        left = context.get_remaining_time_in_millis()
        holder.rollback()

    assert left > 0, f"Lambda would have killed it ({left} ms left)"
    _nothing_written_for(sandbox, "ref-lock-1")
    assert ledger_rows(
        sandbox.mariadb, "SELECT refunded_minor FROM payments WHERE payment_id = 'pay-lock-1'"
    ) == [(0,)]
    # Once the lock is gone, Lambda's retry goes through.
    assert lambda_handler(refund("ref-lock-1", "pay-lock-1", 100), lambda_context)["outcome"] == (
        "PROCESSED"
    )


def test_a_write_behind_a_global_read_lock_gives_up_in_time(
    sandbox: Any, lambda_context: Any
) -> None:
    """A metadata lock (FLUSH TABLES WITH READ LOCK, or a migration's ALTER) is not a row lock:
    innodb_lock_wait_timeout does not bound it, lock_wait_timeout does."""
    with sandbox.mariadb.root("payments") as holder, holder.cursor() as cur:
        cur.execute("FLUSH TABLES WITH READ LOCK")
        context = CountdownContext(BUDGET_SECONDS)
        try:
            with pytest.raises(TransientError):
                lambda_handler(charge("pay-mdl-1"), context)
            left = context.get_remaining_time_in_millis()
        finally:
            cur.execute("UNLOCK TABLES")

    assert left > 0, f"Lambda would have killed it ({left} ms left)"
    _nothing_written_for(sandbox, "pay-mdl-1")


# -- a database that accepts the connection and never answers ----------------------------------


class SilentServer:
    """Listens on loopback, accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if ready:
                self.accepted.append(self._listener.accept()[0])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self._listener.close()


@pytest.fixture
def silent_database(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    server = SilentServer()
    monkeypatch.setenv("DB_PORT", str(server.port))
    try:
        yield server
    finally:
        server.close()


def test_a_database_that_never_answers_fails_the_invocation_in_time(
    sandbox: Any, silent_database: SilentServer
) -> None:
    context = CountdownContext(BUDGET_SECONDS)
    with pytest.raises(TransientError):
        lambda_handler(charge("pay-silent-1"), context)

    left = context.get_remaining_time_in_millis()
    assert left > 0, f"Lambda would have killed it ({left} ms left)"
    assert silent_database.accepted, "the handler really reached the silent server"
    assert sandbox.session_item("pay-silent-1") is None
    assert sandbox.parked() == []


# -- a database that stops answering in the middle of a warm connection -------------------------


class FreezableProxy:
    """Forwards loopback connections to MariaDB until frozen; frozen, it holds every byte in
    both directions (a writer that stops answering mid-conversation, as in a failover)."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thawed = threading.Event()
        self._thawed.set()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if not ready:
                continue
            client = self._listener.accept()[0]
            server = socket.create_connection(("127.0.0.1", self._upstream_port))
            self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(source, target), daemon=True)
                pump.start()
                self._threads.append(pump)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([source], [], [], 0.1)
                if not ready:
                    continue
                data = source.recv(65536)
                if not data:
                    return
                while not self._thawed.wait(0.1):
                    if self._stop.is_set():
                        return
                target.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thawed.set()
        for thread in self._threads:
            thread.join()
        for sock in self._sockets:
            sock.close()
        self._listener.close()


@pytest.fixture
def proxy(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FreezableProxy]:
    server = FreezableProxy(sandbox.mariadb.port)
    monkeypatch.setenv("DB_PORT", str(server.port))
    try:
        yield server
    finally:
        server.close()


def test_a_database_that_freezes_under_a_warm_connection_fails_in_time(
    sandbox: Any, proxy: FreezableProxy, lambda_context: Any
) -> None:
    assert lambda_handler(charge("pay-warm-1"), lambda_context)["outcome"] == "PROCESSED"
    proxy.freeze()
    context = CountdownContext(BUDGET_SECONDS)
    with pytest.raises(TransientError):
        lambda_handler(charge("pay-warm-2"), context)
    left = context.get_remaining_time_in_millis()
    proxy.thaw()

    assert left > 0, f"Lambda would have killed it ({left} ms left)"
    _nothing_written_for(sandbox, "pay-warm-2")
    # The next invocation reconnects and goes through.
    assert lambda_handler(charge("pay-warm-2"), lambda_context)["outcome"] == "PROCESSED"
