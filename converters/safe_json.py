"""JSON from a stranger: size and nesting depth checked before :func:`json.loads` sees it.

``json.loads`` recurses once per ``[``/``{``: a 50,000-level config raises ``RecursionError``
(a traceback, not one line) and a huge one exhausts memory. :func:`loads` first scans the
brackets outside strings and refuses more than ``max_depth`` levels or ``max_bytes`` bytes with
a one-line :class:`~converters.errors.FormatError`.
"""
from __future__ import annotations

import json
import re

from .errors import FormatError

#: Default ceiling of a JSON text (configs, metadata, headers are small).
MAX_BYTES = 64 << 20
#: Default deepest nesting; real Keras configs stay under about 20 levels.
MAX_DEPTH = 64

# A whole string literal (brackets inside it do not count) or one bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of ``text`` (strings skipped; unbalanced text is json's to refuse)."""
    level = deepest = 0
    for m in _TOKEN.finditer(text):
        ch = m.group()
        if ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level -= 1
    return deepest


def loads(text: str | bytes, *, what: str, file: str | None = None, max_depth: int = MAX_DEPTH,
          max_bytes: int = MAX_BYTES) -> object:
    """Parse ``text`` as JSON, or raise one-line :class:`FormatError` naming ``what``.

    Refuses texts over ``max_bytes`` bytes, nesting deeper than ``max_depth``, bytes that are
    not UTF-8 and anything :func:`json.loads` rejects.
    """
    if len(text) > max_bytes:
        raise FormatError(f"{what}: expected JSON of at most {max_bytes} bytes, found {len(text)}", file=file)
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"{what}: expected UTF-8 JSON, found an invalid byte at {e.start}", file=file) from None
    found = depth(text)
    if found > max_depth:
        raise FormatError(f"{what}: expected JSON nested at most {max_depth} levels deep, found {found}", file=file)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{what}: expected JSON, found invalid text ({type(e).__name__}: {e})", file=file) from None
