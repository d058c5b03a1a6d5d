"""JSON from a stranger: size and nesting depth checked before :func:`json.loads` sees it.

``json.loads`` recurses once per ``[``/``{``: a 50,000-level config raises ``RecursionError``
(a traceback, not one line) and a huge one exhausts memory. :func:`loads` first scans the
brackets outside strings and refuses more than ``max_depth`` levels or ``max_bytes`` bytes with
a one-line :class:`~converters.errors.FormatError`.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from .errors import FormatError
from .sanitize import quote

#: Default ceiling of a JSON text (configs, metadata, headers are small).
MAX_BYTES = 64 << 20
#: Default deepest nesting; real Keras configs stay under about 20 levels.
MAX_DEPTH = 64

#: Most arrays and objects one text may hold: a 1,000-layer config holds about 30,000; json.loads
#: spends seconds building 10**6 of them, so more are refused before it runs.
MAX_CONTAINERS = 1_000_000

#: Most values (array items and object members) one text may hold: json.loads makes a Python object of each
#: (a float is 32 bytes of memory for 4 bytes of text: 64 MB of "0.5," was 512 MB); a 1,000-layer config holds
#: about 200,000.
MAX_VALUES = 4_000_000

_QUOTE, _BACKSLASH, _OPENS, _CLOSES, _COMMA = 34, 92, (91, 123), (93, 125), 44
#: Bytes scanned at once: the scan's arrays (a bool per byte, an int64 per bracket, quote or backslash) stay
#: tens of MB whatever the text's size (scanned whole, 151 MB of escaped names took 1.4 GB).
_CHUNK = 1 << 22


def _scan(text: str) -> tuple[int, int, int]:
    """Deepest ``[``/``{`` nesting of ``text``, how many there are and how many commas, all outside strings.

    Vectorized per chunk of :data:`_CHUNK` bytes (numpy, no Python loop per token; the string state, the depth
    and a backslash run crossing a chunk's end carried over): a 64 MB text is scanned in well under a second.
    A quote is a string's end or start unless an odd run of backslashes precedes it."""
    data = text.encode("utf-8", "surrogatepass")  # multi-byte UTF-8 never holds ASCII
    depth = deepest = n_open = n_commas = 0
    in_string, carry = False, 0  # carry: the backslashes ending the previous chunk
    for start in range(0, len(data), _CHUNK):
        b = np.frombuffer(data, np.uint8, count=min(_CHUNK, len(data) - start), offset=start)
        quotes = np.flatnonzero(b == _QUOTE)
        slashes = np.flatnonzero(b == _BACKSLASH)
        run_len = np.zeros(0, np.int64)
        if len(slashes):
            starts = np.diff(slashes, prepend=-2) != 1
            run_id = np.cumsum(starts) - 1
            run_len = np.arange(len(slashes)) - np.flatnonzero(starts)[run_id] + 1
            if slashes[0] == 0:
                run_len[run_id == 0] += carry
        if len(quotes):
            before = np.zeros(len(quotes), np.int64)  # the backslash run right before each quote
            if len(slashes):
                k = np.searchsorted(slashes, quotes) - 1
                hit = (k >= 0) & (slashes[np.maximum(k, 0)] == quotes - 1)
                before = np.where(hit, run_len[np.maximum(k, 0)], 0)
            if quotes[0] == 0:
                before[0] = carry
            quotes = quotes[before % 2 == 0]
        carry = int(run_len[-1]) if len(slashes) and slashes[-1] == len(b) - 1 else 0
        opens = (b == _OPENS[0]) | (b == _OPENS[1])
        marks = np.flatnonzero(opens | (b == _CLOSES[0]) | (b == _CLOSES[1]) | (b == _COMMA))
        outside = (np.searchsorted(quotes, marks) + in_string) % 2 == 0  # an even number of quotes before
        marks = marks[outside]
        is_open = opens[marks]
        is_comma = b[marks] == _COMMA
        steps = np.where(is_open, 1, -1)[~is_comma].astype(np.int64)
        if len(steps):
            levels = steps.cumsum() + depth
            deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
        n_open += int(is_open.sum())
        n_commas += int(is_comma.sum())
        in_string ^= bool(len(quotes) % 2)
    return deepest, n_open, n_commas


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique(pairs: list[tuple[str, object]]) -> dict:
    """An object's members as a dict; a key given twice is refused: Python's json keeps the last value, other
    readers the first or either, so a checker and a loader could see different values (red team round 7: a
    safetensors header naming one tensor twice, a config giving ``class_name`` twice)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of ``text`` (strings skipped; unbalanced text is json's to refuse)."""
    return _scan(text)[0]


def loads(text: str | bytes, *, what: str, file: str | None = None, max_depth: int = MAX_DEPTH,
          max_bytes: int = MAX_BYTES) -> object:
    """Parse ``text`` as JSON, or raise one-line :class:`FormatError` naming ``what``.

    Refuses texts over ``max_bytes`` bytes, nesting deeper than ``max_depth``, more than
    :data:`MAX_CONTAINERS` arrays and objects or :data:`MAX_VALUES` values, bytes that are not UTF-8 and
    anything :func:`json.loads` rejects, and an object giving one key twice.
    """
    if len(text) > max_bytes:
        raise FormatError(f"{what}: expected JSON of at most {max_bytes} bytes, found {len(text)}", file=file)
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"{what}: expected UTF-8 JSON, found an invalid byte at {e.start}", file=file) from None
    found, containers, commas = _scan(text)
    if found > max_depth:
        raise FormatError(f"{what}: expected JSON nested at most {max_depth} levels deep, found {found}", file=file)
    if containers > MAX_CONTAINERS:
        raise FormatError(f"{what}: expected JSON of at most {MAX_CONTAINERS} arrays and objects, found {containers}",
                          file=file)
    if commas + containers > MAX_VALUES:
        raise FormatError(f"{what}: expected JSON of at most {MAX_VALUES} values, found about {commas + containers}",
                          file=file)
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except _DuplicateKey as e:
        raise FormatError(f"{what}: expected each key once in an object, found {quote(e.key)} twice (JSON readers "
                          "disagree on which value counts)", file=file) from None
    except (ValueError, RecursionError) as e:
        if "integer string conversion" in str(e):  # Python's own ceiling (sys.get_int_max_str_digits), whose
            # message tells the user to raise it: no count, size or index of a model has that many digits
            raise FormatError(f"{what}: expected integers of at most {sys.get_int_max_str_digits()} digits, found a "
                              "longer one", file=file) from None
        raise FormatError(f"{what}: expected JSON, found invalid text ({type(e).__name__}: {e})", file=file) from None
