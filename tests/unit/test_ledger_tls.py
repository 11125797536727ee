"""TLS to Aurora is verified against the packaged CA bundle; a missing bundle is a clear error,
not a silent fallback to an unverified connection."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from shared.adapters.mysql import MySQLConnector
from shared.errors import LedgerUnavailable


class _NoSecret:
    def get(self) -> None:
        raise AssertionError("no secret should be fetched before TLS is usable")

    def invalidate(self) -> None:
        raise AssertionError("unexpected")


def _connector(tmp_path: Path, *, tls: bool, ca_file: str | None) -> MySQLConnector:
    return MySQLConnector(
        host="127.0.0.1",
        port=1,
        database="payments",
        credentials=_NoSecret(),  # type: ignore[arg-type]
        tls=tls,
        tls_ca_file=ca_file,
    )


def test_missing_ca_bundle_is_a_clear_ledger_error(tmp_path: Path) -> None:
    connector = _connector(tmp_path, tls=True, ca_file=str(tmp_path / "absent.pem"))
    with pytest.raises(LedgerUnavailable, match="CA bundle"):
        connector.connect()


def test_tls_context_verifies_chain_and_host_name(tmp_path: Path) -> None:
    context = _connector(tmp_path, tls=True, ca_file=None).ssl_context()
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_local_server_without_tls(tmp_path: Path) -> None:
    assert _connector(tmp_path, tls=False, ca_file=None).ssl_context() is None
