"""pytest plugin: scan every log line the suite emits for card numbers and secrets.

Enable it for the whole suite in pyproject.toml ([tool.pytest.ini_options]): ``pythonpath =
["."]`` (so `tests` imports before collection) and ``addopts = "... -p tests.log_capture"``.

What it sees, per test phase (setup, call, teardown):
- every ``logging`` record, through a handler on the root logger (Powertools' logger propagates
  to it) and on any logger that does not propagate, formatted as Powertools would print it plus
  all its ``extra`` fields;
- the stdout/stderr pytest captured (Powertools JSON lines, EMF metrics, prints);
- whatever a test read back with ``capsys``/``capfd`` ``readouterr()`` (it never reaches the
  report otherwise).

A finding fails the phase it happened in, naming the test, and the session (non-zero exit), with
a summary that never repeats the secret itself.

The card-number rule is our own, independent of src/shared/card_data.py (a bug there must not
blind the check): 13-19 digits that pass Luhn, written as one run or as groups split by single
spaces or dashes. It is looser than card_data (any grouping), so values that are known not to be
card data are removed first: UUIDs (EventBridge ids, Lambda request ids), X-Ray trace ids,
hexadecimal tokens with a letter in them (hashes, span ids: a PAN has no letters), and the epoch
``Timestamp`` of EMF metric lines. A digit run longer than 19 digits is not a card number.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _pytest.capture import CaptureFixture

ROOT = Path(__file__).resolve().parent.parent

_NOT_CARD_DATA = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # UUID
    r"|1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}"  # X-Ray trace id
    r"|(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}"  # hex token with a letter
    r")(?![0-9A-Za-z])"
    r'|"Timestamp"\s*:\s*[0-9]+'  # EMF metrics' epoch milliseconds
)
_DIGIT_GROUPS = re.compile(r"(?<![0-9])[0-9]+(?:[ -][0-9]+)*(?![0-9])")
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD", re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_numbers(text: str) -> list[str]:
    """Luhn-valid 13-19 digit numbers in ``text``, plain or grouped by spaces or dashes."""
    text = _NOT_CARD_DATA.sub(" ", text)
    found = []
    for run in _DIGIT_GROUPS.finditer(text):
        groups = re.split(r"[ -]", run.group())
        for first in range(len(groups)):
            digits = ""
            for group in groups[first:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    found.append(digits)
    return found


def find_leaks(text: str, secrets: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Descriptions of what ``text`` leaks, safe to print (no secret is repeated)."""
    leaks = [
        f"a Luhn-valid {len(number)}-digit card number ending {number[-4:]}"
        for number in card_numbers(text)
    ]
    leaks += [f"the {label}" for label, value in secrets if value and value in text]
    return leaks


def _constants_named_secret(path: Path) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(path.read_text())
    except (SyntaxError, UnicodeDecodeError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            value = node.value.value
            if not isinstance(value, str) or len(value) < 8:
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and _SECRET_NAME.search(target.id):
                    yield target.id, value


def _sandbox_passwords(endpoints: Path) -> Iterator[tuple[str, str]]:
    """Every "password" value anywhere in the sandbox's endpoints.json."""
    try:
        stack: list[Any] = [json.loads(endpoints.read_text())]
    except (OSError, ValueError):
        return
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "password" and isinstance(value, str) and value:
                    yield f"sandbox MariaDB password in {endpoints.name}", value
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def known_secrets(root: Path = ROOT) -> list[tuple[str, str]]:
    """(label, value) of every password the tests and the sandbox use: string constants named
    *PASSWORD*/*PASSWD* in tests/ and ops/, and the sandbox's MariaDB passwords."""
    found = [
        (f"{name} of {path.relative_to(root)}", value)
        for folder in ("tests", "ops")
        for path in sorted((root / folder).rglob("*.py"))
        for name, value in _constants_named_secret(path)
    ]
    found += _sandbox_passwords(root / ".sandbox" / "endpoints.json")
    return found


# -- the plugin ---------------------------------------------------------------------------------

_STANDARD_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@dataclass
class Finding:
    nodeid: str
    when: str
    source: str
    leaks: list[str]


class _Collector(logging.Handler):
    """Keeps the text of every record, tagged with the test phase it was emitted in."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.phase = ("<session>", "collect")
        self.texts: list[tuple[tuple[str, str], str]] = []
        self._texts_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        parts = []
        try:
            parts.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a bad format string must not hide the rest
            parts.append(f"{record.msg!r} {record.args!r}")
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS}
        parts.append(json.dumps(extras, default=repr))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
        if record.stack_info:
            parts.append(record.stack_info)
        parts.extend(self._as_powertools_prints(record))
        with self._texts_lock:
            self.texts.append((self.phase, "\n".join(parts)))

    @staticmethod
    def _as_powertools_prints(record: logging.LogRecord) -> Iterator[str]:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            for handler in logger.handlers:
                formatter = handler.formatter
                if formatter and type(formatter).__module__.startswith("aws_lambda_powertools"):
                    try:
                        yield formatter.format(record)
                    except Exception:  # noqa: BLE001, S112 - the other parts still get scanned
                        continue
            logger = logger.parent if logger.propagate else None

    def drain(self, phase: tuple[str, str]) -> list[str]:
        with self._texts_lock:
            mine = [text for (p, text) in self.texts if p == phase]
            self.texts = [(p, text) for (p, text) in self.texts if p != phase]
        return mine


class LogScan:
    def __init__(self) -> None:
        self.secrets = known_secrets()
        self.findings: list[Finding] = []
        self.collector = _Collector()
        self._attached: list[logging.Logger] = []
        self._read_back: list[tuple[tuple[str, str], str]] = []
        self._original_readouterr = CaptureFixture.readouterr

    # attach / detach --------------------------------------------------------------------------
    def start(self) -> None:
        self._attach(logging.getLogger())
        scan = self

        def readouterr(fixture: CaptureFixture[Any]) -> Any:
            result = scan._original_readouterr(fixture)
            scan._read_back.append((scan.collector.phase, f"{result.out}\n{result.err}"))
            return result

        CaptureFixture.readouterr = readouterr  # type: ignore[method-assign]

    def stop(self) -> None:
        CaptureFixture.readouterr = self._original_readouterr  # type: ignore[method-assign]
        for logger in self._attached:
            logger.removeHandler(self.collector)
        self._attached.clear()

    def _attach(self, logger: logging.Logger) -> None:
        if logger not in self._attached:
            logger.addHandler(self.collector)
            self._attached.append(logger)

    def _attach_non_propagating(self) -> None:
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger) and not logger.propagate:
                self._attach(logger)

    # hooks ------------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        self._attach_non_propagating()
        self.collector.phase = (item.nodeid, "setup")
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        self.collector.phase = (item.nodeid, "call")
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        self.collector.phase = (item.nodeid, "teardown")
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        phase = (item.nodeid, call.when)
        sources = [("log record", text) for text in self.collector.drain(phase)]
        sources += [
            (name, content)
            for name, content in report.sections
            if name.startswith("Captured ") and name.endswith(f" {call.when}")
        ]
        sources += [("capsys/capfd read-back", t) for p, t in self._read_back if p == phase]
        self._read_back = [(p, t) for p, t in self._read_back if p != phase]
        found = [
            (source, leaks) for source, text in sources if (leaks := find_leaks(text, self.secrets))
        ]
        if not found:
            return
        for source, leaks in found:
            self.findings.append(Finding(item.nodeid, call.when, source, leaks))
        message = "\n".join(f"  {source}: {', '.join(leaks)}" for source, leaks in found)
        report.outcome = "failed"
        report.longrepr = (
            f"card data or a secret reached the logs during {call.when} of {item.nodeid}:\n"
            f"{message}"
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.collector.phase = ("<session>", "finish")
        leftovers = [text for _, text in self.collector.texts]
        leftovers += [text for _, text in self._read_back]
        for text in leftovers:
            if leaks := find_leaks(text, self.secrets):
                self.findings.append(Finding("<outside any test>", "session", "log record", leaks))
        if self.findings and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.findings:
            return
        terminalreporter.section("card data or secrets in logs", sep="=", red=True, bold=True)
        for finding in self.findings:
            terminalreporter.line(
                f"{finding.nodeid} [{finding.when}, {finding.source}]: {', '.join(finding.leaks)}"
            )


_KEY = "log_capture_scan"


def pytest_configure(config: pytest.Config) -> None:
    scan = LogScan()
    scan.start()
    config.pluginmanager.register(scan, _KEY)


def pytest_unconfigure(config: pytest.Config) -> None:
    scan = config.pluginmanager.get_plugin(_KEY)
    if scan is not None:
        scan.stop()
        config.pluginmanager.unregister(scan, _KEY)
