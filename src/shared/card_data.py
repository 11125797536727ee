"""Primary account numbers (PANs) must never enter the system: find them and mask them.

A card number is 13-19 digits that pass the Luhn check. It is found in any string or number, at
any depth of a JSON value (keys too), written
- as one run of digits: "4111111111111111", "card4111111111111111" (letters may touch it; other
  digits may not: a longer run of digits is not a card number);
- in the groups cards are printed in, 4-4-4-4 (and 4-4-4-1..3, 4-4-4-4-1..3, 4-4-5), Amex 4-6-5,
  Diners 4-6-4, the groups joined by one to three separators of any mix: space, dash, dot,
  underscore ("4111 1111-1111 1111", "4111.1111.1111.1111", "p-4111-1111-1111-1111-X");
- in an id field (payment_id, original_payment_id, merchant_id, customer_id), in any grouping at
  all: digit groups joined by separators that make 13-19 digits in all ("c_41111_11111_111111").

Not looked for inside a UUID (8-4-4-4-12 hex digits: EventBridge ids, request ids) nor inside a
hexadecimal token of 32 characters or more with a letter in it (digests): their digit groups can
line up like a printed card number by chance, about once in 10,000 UUIDs, and a rejected payment
costs more than the (typed-by-nobody) card number hidden in a UUID's shape. A float carries at
most 17 significant digits: a 19-digit card number sent as a float has already lost its digits.

The contract (docs/decisions.md, "Ledger correctness (issue 7)") and the measured precision and
recall (tests/unit/test_card_data_corpus.py) go with these rules. No maintained library finds
Luhn-valid PANs in arbitrary JSON, hence this module. Every walk is iterative or depth-bounded:
an event nested thousands of levels deep must be answered, not crash the handler.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

REDACTED = "[PAN REDACTED]"
ID_FIELDS = frozenset({"payment_id", "original_payment_id", "merchant_id", "customer_id"})
# A masked copy keeps this many levels of nesting (the contract needs 4); deeper values are
# replaced, so the copy can always be serialised (json.dumps recurses).
MAX_DEPTH = 32
MAX_PATHS = 10  # places reported in a rejection reason
_MAX_KEY = 64  # characters of a key kept in a reported path
# int -> str refuses more than 4,300 digits (Python's limit); a card number has at most 19.
_MAX_PAN_BITS = 64
_MAX_INT_BITS = 4_000 * 3

_SEPARATOR = "[ \u00a0\u3000._\u2010-\u2015-]"
_CHAIN = re.compile(rf"\d+(?:{_SEPARATOR}{{1,3}}\d+)*")
# Every chain of 13+ characters starts with one of these: a cheap first look at a string.
_CANDIDATE = re.compile(r"\d[\d \u00a0\u3000._\u2010-\u2015-]{12}")
_GROUP = re.compile(r"\d+")
_EXEMPT = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{32,}"
    r")(?![0-9A-Za-z])"
)
# Lengths of consecutive printed groups that make a card number.
_LAYOUTS = frozenset(
    {(4, 4, 4, n) for n in range(1, 5)}
    | {(4, 4, 4, 4, n) for n in range(1, 4)}
    | {(4, 4, 5), (4, 6, 5), (4, 6, 4)}
)
_MIN_DIGITS, _MAX_DIGITS = 13, 19
_SMALLEST_PAN = 10 ** (_MIN_DIGITS - 1)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_pan(digits: str) -> bool:
    return _MIN_DIGITS <= len(digits) <= _MAX_DIGITS and luhn_valid(digits)


def _chain_spans(text: str, start: int, end: int, *, any_grouping: bool) -> Iterator[range]:
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text, start, end)]
    if any_grouping and _is_pan("".join(text[a:b] for a, b in groups)):
        yield range(start, end)
        return
    for first in range(len(groups)):
        lengths: tuple[int, ...] = ()
        digits = ""
        for last in range(first, len(groups)):
            a, b = groups[last]
            lengths += (b - a,)
            digits += text[a:b]
            if len(digits) > _MAX_DIGITS:
                break
            if (len(lengths) == 1 or lengths in _LAYOUTS) and _is_pan(digits):
                yield range(groups[first][0], b)


def pan_spans(text: str, *, id_field: bool = False) -> list[range]:
    """Where ``text`` carries a card number (character ranges, in order, may overlap)."""
    # A chain of digit groups shorter than 13 characters cannot hold 13 digits: almost every
    # string is decided by this one search.
    if len(text) < _MIN_DIGITS or _CANDIDATE.search(text) is None:
        return []
    scanned = _EXEMPT.sub(lambda m: "#" * len(m.group()), text)
    spans: list[range] = []
    for chain in _CHAIN.finditer(scanned):
        if chain.end() - chain.start() >= _MIN_DIGITS:
            spans.extend(_chain_spans(scanned, *chain.span(), any_grouping=id_field))
    return spans


def mask_text(text: str, *, id_field: bool = False) -> str:
    spans = pan_spans(text, id_field=id_field)
    if not spans:
        return text
    hidden = [False] * len(text)
    for span in spans:
        for index in span:
            hidden[index] = True
    out: list[str] = []
    for index, char in enumerate(text):
        if not hidden[index]:
            out.append(char)
        elif index == 0 or not hidden[index - 1]:
            out.append(REDACTED)
    return "".join(out)


def _number_texts(value: int | float) -> tuple[str, ...]:
    if isinstance(value, int):
        # More bits than any 19-digit number: no card number, and str() may refuse it.
        return (str(value),) if value.bit_length() <= _MAX_PAN_BITS else ()
    if value != value or value in (float("inf"), float("-inf")):
        return ()
    texts: tuple[str, ...] = (repr(value),)
    if value.is_integer() and abs(value) < 1e20:
        texts += (str(int(value)),)  # 4.111111111111111e+15 is a card number too
    return texts


def _carries_pan(value: Any, *, id_field: bool = False) -> bool:
    if isinstance(value, str):
        # Most strings are decided by the length and one regex search, without a call.
        return (
            len(value) >= _MIN_DIGITS
            and _CANDIDATE.search(value) is not None
            and bool(pan_spans(value, id_field=id_field))
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int) and -_SMALLEST_PAN < value < _SMALLEST_PAN:
        return False  # a float's digits may hide after its point: 0.4111111111111111
    return any(pan_spans(text) for text in _number_texts(value))


# A path is built only for what is reported: (parent, key or index) links, root None.
_Link = tuple[Any, Any] | None


def _path(link: _Link) -> str:
    parts: list[str] = []
    while link is not None:
        link, part = link
        if isinstance(part, int) and not isinstance(part, bool):
            parts.append(f"[{part}]")
        else:
            text = mask_text(part if isinstance(part, str) else repr(part))
            text = text if len(text) <= _MAX_KEY else text[:_MAX_KEY] + "…"
            parts.append(f".{text}")
    return "".join(reversed(parts)).removeprefix(".") or "event"


def _found(value: Any) -> Iterator[_Link]:
    """Where ``value`` carries a card number (links to the paths), in document order, without
    recursion. Keys are looked at too (a key can carry a card number)."""
    stack: list[tuple[Any, _Link, bool]] = [(value, None, False)]
    while stack:
        node, link, id_field = stack.pop()
        kind = type(node)
        if kind is str:  # the common leaf first
            if _carries_pan(node, id_field=id_field):
                yield link
        elif kind is dict or isinstance(node, dict):
            children = []
            for key, item in node.items():
                here = (link, key)
                if type(key) is str and _carries_pan(key):
                    yield here
                children.append((item, here, key in ID_FIELDS if type(key) is str else False))
            stack.extend(reversed(children))
        elif isinstance(node, list | tuple):
            stack.extend((item, (link, i), False) for i, item in reversed(list(enumerate(node))))
        elif _carries_pan(node, id_field=id_field):
            yield link


def pan_paths(value: Any) -> list[str]:
    """Dotted paths (keys masked, at most MAX_PATHS) of the places in ``value`` that carry a
    card number; the value itself is "event"."""
    found: list[str] = []
    for link in _found(value):
        found.append(_path(link))
        if len(found) == MAX_PATHS:
            break
    return found


def contains_pan(value: Any) -> bool:
    """True if any string or number anywhere in ``value`` (keys included) carries a PAN."""
    return next(_found(value), False) is not False


def mask(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """A copy of ``value`` with every card number replaced, safe to park or log: what
    ``pan_paths`` finds is exactly what is masked (so a value with none comes back equal), and
    nesting deeper than ``max_depth`` is cut (a copy must serialise)."""
    return _mask(value, max_depth, id_field=False)


def _mask(value: Any, depth: int, *, id_field: bool) -> Any:
    if isinstance(value, str):
        if len(value) < _MIN_DIGITS or _CANDIDATE.search(value) is None:
            return value
        return mask_text(value, id_field=id_field)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        return f"[integer of {value.bit_length()} bits removed]"
    if isinstance(value, int | float):
        return REDACTED if _carries_pan(value) else value
    if isinstance(value, dict | list | tuple):
        return _mask_container(value, depth)
    return value


def _mask_container(value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> Any:
    if depth <= 0:
        return f"[nested deeper than {MAX_DEPTH} levels: removed]"
    if not isinstance(value, dict):
        return [_mask(item, depth - 1, id_field=False) for item in value]
    masked: dict[Any, Any] = {}
    for key, item in value.items():
        new_key = mask_text(key) if isinstance(key, str) else key
        while new_key in masked:  # two keys masked alike must not overwrite each other
            new_key = f"{new_key}'"
        is_id = isinstance(key, str) and key in ID_FIELDS
        masked[new_key] = _mask(item, depth - 1, id_field=is_id)
    return masked
