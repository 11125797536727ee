"""What SAM packages is what the tests ran."""

from __future__ import annotations

import re
from importlib.metadata import version

from tests.conftest import ROOT


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_sam_builds_from_the_same_pins_as_requirements_runtime() -> None:
    sam = (ROOT / "src" / "requirements.txt").read_text()
    assert sam == (ROOT / "requirements" / "runtime.txt").read_text()


def test_the_test_environment_runs_the_packaged_versions() -> None:
    pins = _pins((ROOT / "requirements" / "runtime.txt").read_text())
    assert pins, "no pinned runtime requirements found"
    assert {name: version(name) for name in pins} == pins
