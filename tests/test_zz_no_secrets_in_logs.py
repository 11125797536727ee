"""The log scan (tests/log_capture.py) really scans: its card-number rule finds planted PANs and
leaves ids alone, it knows the passwords, and a suite that logs either fails, naming the test.
Named zz so that, in a plain run, it comes last."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import log_capture
from tests.conftest import APP_PASSWORD

PLANTED = [
    "4111111111111111",
    "card 4111 1111 1111 1111 exp 12/29",
    "4111-1111-1111-1111",
    "amex 3782 822463 10005",
    "5555555555554444",
    '{"level":"INFO","message":"note","metadata":{"note":"6011 0009 9013 9424"}}',
    "order 12 4111 1111 1111 1111",  # a stray group in front
    "4111 1111 1111 1111 1",  # and behind
    "4222222222222",  # 13 digits
    "visa:4012888888881881;",
]
NOT_CARD_DATA = [
    '"function_request_id":"00000000-0000-4000-8000-000000000000"',  # all-zero request id
    "id 9f6079f0-511b-5aab-abf0-21186037058d",
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",  # X-Ray
    "payload_hash c626f0df8f1d4ed1d39cd8644104b241e474f4cc1131f53b1cd944cf8cd9f8da",
    '{"_aws":{"Timestamp":1795908953333,"CloudWatchMetrics":[]}}',  # EMF epoch ms
    "2026-11-28 23:35:08,216+0000",
    "4111111111111112",  # fails Luhn
    "account 123456789012",  # 12 digits
    "amounts 12550 12550",  # 10 digits
    "12345678901234567890123",  # longer than any card number
]


@pytest.mark.parametrize("text", PLANTED)
def test_planted_card_number_is_found(text: str) -> None:
    assert log_capture.card_numbers(text), text
    assert log_capture.find_leaks(text)


@pytest.mark.parametrize("text", NOT_CARD_DATA)
def test_ids_hashes_and_timestamps_are_not_card_numbers(text: str) -> None:
    assert log_capture.card_numbers(text) == []


def test_luhn() -> None:
    assert log_capture.luhn_valid("79927398713")
    assert not log_capture.luhn_valid("79927398710")


def test_the_ledger_password_is_known_and_found() -> None:
    secrets = log_capture.known_secrets()
    assert ("APP_PASSWORD of tests/conftest.py", APP_PASSWORD) in secrets
    leaks = log_capture.find_leaks(f"connect failed for payments_app/{APP_PASSWORD}", secrets)
    assert leaks == ["the APP_PASSWORD of tests/conftest.py"]
    assert all(APP_PASSWORD not in leak for leak in leaks)  # the report never repeats it


def test_findings_never_repeat_the_card_number() -> None:
    (leak,) = log_capture.find_leaks("pan 4111111111111111")
    assert "411111" not in leak and leak.endswith("ending 1111")


def test_the_scan_is_enabled_for_this_suite(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("tests.log_capture"), (
        "the log scan is not running: in pyproject.toml [tool.pytest.ini_options] set "
        '`pythonpath = ["."]` and add `-p tests.log_capture` to addopts'
    )


_LEAKY_SUITE = """
import logging
import sys

from aws_lambda_powertools import Logger

logger = Logger(service="leaky")


def test_clean():
    logger.info("payment processed", extra={"payment_id": "pay-1"})


def test_logs_a_card_number():
    logger.warning("declined", extra={"note": "card 4111 1111 1111 1111"})


def test_prints_the_password():
    print("password=PASSWORD_HERE")


def test_reads_back_a_card_number(capsys):
    logging.getLogger("plain").error("pan %s", "5555555555554444")
    print("5555-5555-5555-4444")
    capsys.readouterr()
"""


def test_a_leaky_suite_fails_naming_its_tests(tmp_path: Path) -> None:
    suite = tmp_path / "test_leaky.py"
    suite.write_text(textwrap.dedent(_LEAKY_SUITE).replace("PASSWORD_HERE", APP_PASSWORD))
    root = Path(log_capture.__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "-p", "tests.log_capture"]
        + ["-p", "no:cacheprovider", "-c", "/dev/null", "--rootdir", str(tmp_path), "-q"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    summary = output[output.find("card data or secrets in logs") :]
    assert run.returncode == 1, f"exit {run.returncode}"
    assert "test_leaky.py::test_clean" not in summary
    for name in ("test_logs_a_card_number", "test_prints_the_password"):
        assert f"test_leaky.py::{name} [call" in summary, name
    assert "test_leaky.py::test_reads_back_a_card_number [call, capsys/capfd read-back]" in summary
    assert "3 failed, 1 passed" in output
    assert APP_PASSWORD not in summary and "4111 1111 1111 1111" not in summary
    assert json.dumps(summary)  # printable as is
