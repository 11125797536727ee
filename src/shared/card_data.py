"""Primary account numbers (PANs) must never enter the system: detect and mask them.

A PAN here is 13-19 digits that pass the Luhn check, written as one run or in the groups cards
print (4-4-4-4[-3], Amex 4-6-5, Diners 4-6-4) split by one kind of separator (space or dash).
Looser patterns flag parts of UUIDs (EventBridge ids, request ids). No maintained library does
"find Luhn-valid PANs inside arbitrary JSON", hence this small module.
"""

from __future__ import annotations

import re
from typing import Any

_CANDIDATE = re.compile(
    # one run: no UUID group is longer than 12 digits, so only digits may not touch it
    r"(?<![0-9])[0-9]{13,19}(?![0-9])"
    # printed groups: must stand alone, not be the tail of a longer dashed token (UUIDs)
    r"|(?<![0-9A-Za-z-])(?:"
    r"[0-9]{4}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,4}(?:\1[0-9]{1,3})?"
    r"|[0-9]{4}([ -])[0-9]{6}\2[0-9]{4,5}"
    r")(?![0-9A-Za-z])"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _pans_in(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            spans.append(match.span())
    return spans


def contains_pan(value: Any) -> bool:
    """True if any string or number anywhere in ``value`` carries a PAN."""
    if isinstance(value, str):
        return bool(_pans_in(value))
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return bool(_pans_in(str(value)))
    if isinstance(value, dict):
        return any(contains_pan(k) or contains_pan(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_pan(v) for v in value)
    return False


def pan_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths (keys masked) of every place in ``value`` that carries a PAN."""
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            here = f"{path}.{mask_text(str(key))}" if path else mask_text(str(key))
            if contains_pan(key):
                found.append(here)
            found.extend(pan_paths(item, here))
        return found
    if isinstance(value, list | tuple):
        return [p for index, item in enumerate(value) for p in pan_paths(item, f"{path}[{index}]")]
    return [path or "event"] if contains_pan(value) else []


def mask_text(text: str) -> str:
    for start, end in reversed(_pans_in(text)):
        text = text[:start] + "[PAN REDACTED]" + text[end:]
    return text


def mask(value: Any) -> Any:
    """A copy of ``value`` with every PAN replaced, safe to park or log."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and _pans_in(str(value)):
        return "[PAN REDACTED]"
    if isinstance(value, dict):
        return {mask(k): mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value
