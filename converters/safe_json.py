"""JSON from a stranger: size and nesting depth checked before :func:`json.loads` sees it.

``json.loads`` recurses once per ``[``/``{``: a 50,000-level config raises ``RecursionError``
(a traceback, not one line) and a huge one exhausts memory. :func:`loads` first scans the
brackets outside strings and refuses more than ``max_depth`` levels or ``max_bytes`` bytes with
a one-line :class:`~converters.errors.FormatError`.
"""
from __future__ import annotations

import json

import numpy as np

from .errors import FormatError

#: Default ceiling of a JSON text (configs, metadata, headers are small).
MAX_BYTES = 64 << 20
#: Default deepest nesting; real Keras configs stay under about 20 levels.
MAX_DEPTH = 64

#: Most arrays and objects one text may hold: a 1,000-layer config holds about 30,000; json.loads
#: spends seconds building 10**6 of them, so more are refused before it runs.
MAX_CONTAINERS = 1_000_000

_QUOTE, _BACKSLASH, _OPENS, _CLOSES = 34, 92, (91, 123), (93, 125)


def _brackets(text: str) -> tuple[int, int]:
    """Deepest ``[``/``{`` nesting of ``text`` and how many there are, brackets inside strings skipped.

    Vectorized (numpy, no Python loop per token): a 64 MB text is scanned in well under a second.
    A quote is a string's end or start unless an odd run of backslashes precedes it."""
    b = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)  # multi-byte UTF-8 never holds ASCII
    quotes = np.flatnonzero(b == _QUOTE)
    slashes = np.flatnonzero(b == _BACKSLASH)
    if len(quotes) and len(slashes):
        run_start = np.flatnonzero(np.diff(slashes, prepend=-2) != 1)  # index (in slashes) where each run starts
        run_len = np.arange(len(slashes)) - run_start[np.searchsorted(run_start, np.arange(len(slashes)), "right") - 1] + 1
        k = np.searchsorted(slashes, quotes) - 1  # the last backslash before each quote
        escaped = (k >= 0) & (slashes[np.maximum(k, 0)] == quotes - 1) & (run_len[np.maximum(k, 0)] % 2 == 1)
        quotes = quotes[~escaped]
    opens = (b == _OPENS[0]) | (b == _OPENS[1])
    marks = np.flatnonzero(opens | (b == _CLOSES[0]) | (b == _CLOSES[1]))
    marks = marks[np.searchsorted(quotes, marks) % 2 == 0]  # outside strings: an even number of quotes before
    steps = np.where(opens[marks], 1, -1).astype(np.int64)
    n_open = int((steps > 0).sum())
    return (max(0, int(steps.cumsum().max())) if len(steps) else 0), n_open


def depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of ``text`` (strings skipped; unbalanced text is json's to refuse)."""
    return _brackets(text)[0]


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
    found, containers = _brackets(text)
    if found > max_depth:
        raise FormatError(f"{what}: expected JSON nested at most {max_depth} levels deep, found {found}", file=file)
    if containers > MAX_CONTAINERS:
        raise FormatError(f"{what}: expected JSON of at most {MAX_CONTAINERS} arrays and objects, found {containers}",
                          file=file)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{what}: expected JSON, found invalid text ({type(e).__name__}: {e})", file=file) from None
