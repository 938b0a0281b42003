"""Scrubbing the API key out of text that came from the network.

A gateway or proxy may echo the ``Authorization`` header into an error page, a message or a
header. The transport passes every answer through :class:`Redactor` before anything stores or
shows it, so no later layer has to remember to.
"""

from __future__ import annotations

import itertools
import re
from typing import AnyStr

MASK = "***"

# One-letter escapes of JSON and Python (the backslash comes from the pattern).
_SHORT_ESCAPES = {"\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


def _hex(value: int, width: int) -> str:
    """``value`` in hex, each letter in either case: ``_hex(0x2f, 2) == "2[fF]"``."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{width}x}")


def _percent(char: str) -> str:
    return "".join("%" + _hex(b, 2) for b in char.encode("utf-8"))


def _escapes(char: str) -> list[str]:
    """The backslash escapes of one character, without their backslash."""
    code = ord(char)
    escapes = [re.escape(_SHORT_ESCAPES[char])] if char in _SHORT_ESCAPES else []
    if code < 0x10000:
        escapes.append("u" + _hex(code, 4))
    else:  # a JSON surrogate pair, or Python's \U escape
        offset = code - 0x10000
        escapes.append("u" + _hex(0xD800 + (offset >> 10), 4) + r"\\+u" + _hex(0xDC00 + (offset & 0x3FF), 4))
        escapes.append("U" + _hex(code, 8))
    if code < 0x100:
        escapes.append("x" + _hex(code, 2))
    encoded = char.encode("utf-8")
    if len(encoded) > 1:  # the UTF-8 bytes in a bytes repr
        escapes.append(r"\\+".join("x" + _hex(b, 2) for b in encoded))
    return escapes


def _pattern(secret: str) -> str:
    """The key, each character in every spelling an echo can give it, independently.

    A character is itself, or a backslash escape (``\\u0022``, ``\\x22``, ``\\t``), after any run
    of backslashes (JSON's ``\\"`` and ``\\/``, repr's ``\\'``, and these escaped again); or its
    percent-encoded UTF-8 (``%2F`` or ``%2f``; ``+`` for a space). A run of backslashes in the key
    is a run at least as long.

    Each run of backslashes is taken whole, never given back (``(?=(R))\\N`` is an atomic group
    that works before Python 3.11), and a match starts only where a run starts: a hostile body of
    backslashes costs linear time, not quadratic or exponential.
    """
    parts = [r"(?<!\\)"]
    group = 0
    for backslash, chars in itertools.groupby(secret, key=lambda c: c == "\\"):
        if backslash:
            count = len(list(chars))
            group += 1
            parts.append(rf"(?:(?=(\\{{{count},}}))\{group}|(?:%5[cC]){{{count}}})")
            continue
        for char in chars:
            group += 1
            escaped = r"(?<=\\)(?:" + "|".join(_escapes(char)) + ")"
            spellings = [re.escape(char), escaped, _percent(char)] + ([r"\+"] if char == " " else [])
            parts.append(rf"(?=(\\*))\{group}(?:" + "|".join(spellings) + ")")
    return "".join(parts)


class Redactor:
    """Replaces the key, in any spelling a server could echo it in, with ``***``.

    Spellings: plain, JSON-escaped (also ``\\/`` and ``\\u0022``), in a Python repr (also a repr
    of a repr, as in an exception message quoting a line), percent-encoded (either hex case),
    and any mix of these.
    """

    __slots__ = ("_bytes", "_secret", "_text")

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("Redactor needs a non-empty secret")
        pattern = _pattern(secret)
        self._secret = secret
        self._text = re.compile(pattern)
        self._bytes = re.compile(pattern.encode("utf-8"))  # a literal non-ASCII character: its UTF-8 bytes

    def __repr__(self) -> str:
        return "Redactor(***)"

    def scrub_text(self, value: str) -> str:
        if self._secret not in value and not any(c in value for c in "\\%+"):
            return value  # only the plain spelling is possible, and it is not there
        return _scrub(self._text, value, MASK)

    def scrub_bytes(self, value: bytes) -> bytes:
        if self._secret.encode("utf-8") not in value and not any(c in value for c in b"\\%+"):
            return value
        return _scrub(self._bytes, value, MASK.encode())


def _scrub(pattern: re.Pattern[AnyStr], value: AnyStr, mask: AnyStr) -> AnyStr:
    # A replacement can join the mask and its neighbours into a new spelling (a key that itself
    # contains "***"), so replace until none is left. Every round shortens the value, except for
    # a key no longer than the mask, which a replacement then cannot rebuild.
    scrubbed = pattern.sub(mask, value)
    while len(scrubbed) < len(value) and pattern.search(scrubbed):
        value, scrubbed = scrubbed, pattern.sub(mask, scrubbed)
    return scrubbed
