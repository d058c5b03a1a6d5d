"""The one place where text from an input file becomes part of code, a message or a name.

Every name, string and label gateport reads (layer and tensor names, versions, file names,
metadata) comes from a stranger. Nothing of it reaches generated code, an error message, a
report or a path except through these functions:

- :func:`identifier` -- a valid, unique, ASCII Python identifier (never a keyword, never one of
  ``taken``); Python's NFKC normalization of identifiers cannot make two of them collide;
- :func:`literal` -- a Python string literal (``repr`` of a ``str``): evaluates to the text itself;
- :func:`comment` -- text for a comment or docstring: printable ASCII without quotes,
  backslashes or line breaks, cut to a length, so it cannot end the comment or docstring;
- :func:`quote` -- a name inside a one-line message: quoted, control and invisible characters
  escaped, cut to a length;
- :func:`one_line` -- a whole message: control and invisible characters escaped;
- :class:`TerminalStream` -- the CLI's stdout and stderr: whatever a report, a table or a ``wrote`` line
  carries, no control, escape or bidi character reaches the terminal raw (line breaks and tabs stay).
"""
from __future__ import annotations

import io
import keyword
import re
import unicodedata

#: Longest name shown in a message or a comment; longer ones end in "...".
MAX_SHOWN = 120
#: Longest line :func:`one_line` gives (a 70 MB version string must not become a 70 MB line).
MAX_LINE = 2000
#: Most characters of a name :func:`identifier` reads: NFKD turns one character into up to 18 (U+FDFA), so a
#: 24 MB name normalized whole took 1.5 GB; the identifier keeps 60 characters, the rest was thrown away.
MAX_SCAN = 1000

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]+")
_COMMENT_SAFE = re.compile(r"[^A-Za-z0-9 _.,:;=+*/()\[\]<>@%&!?^|~$-]")


def identifier(text: object, taken: set[str] | frozenset[str] = frozenset(), *, fallback: str = "t") -> str:
    """A valid ASCII Python identifier like ``text``, not a keyword and not in ``taken``.

    Non-ASCII letters are reduced to their ASCII base (``é`` -> ``e``, ``ﬁ`` -> ``fi``) where NFKD
    has one, anything else becomes ``_``. The caller adds the result to ``taken``.
    """
    ascii_text = unicodedata.normalize("NFKD", str(text)[:MAX_SCAN]).encode("ascii", "ignore").decode("ascii")
    name = _NOT_IDENT.sub("_", ascii_text).strip("_")[:60] or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name.startswith("__"):
        name = f"{name}_"
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


def literal(text: object) -> str:
    """A Python string literal whose value is ``str(text)`` (safe anywhere an expression is)."""
    return repr(str(text))


def comment(text: object, limit: int = MAX_SHOWN) -> str:
    """``text`` made safe for a ``#`` comment or a docstring: printable ASCII, no quote/backslash/newline."""
    text = str(text)
    # each character gives at least one: the first limit + 1 decide the result (and whether it is cut)
    ascii_text = unicodedata.normalize("NFKD", text[: limit + 1]).encode("ascii", "replace").decode("ascii")
    safe = _COMMENT_SAFE.sub("?", ascii_text)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def quote(text: object, limit: int = MAX_SHOWN) -> str:
    """``text`` quoted for a one-line message: ``'name'`` with control/invisible characters escaped."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def one_line(text: object, limit: int = MAX_LINE) -> str:
    """``text`` with every line break, control and invisible (format) character escaped, cut to
    ``limit`` characters (ending in "...")."""
    text = str(text)
    line = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text[:limit])  # escapes only lengthen
    return line if len(line) <= limit and len(text) <= limit else line[: limit - 3] + "..."


def terminal(text: str) -> str:
    """``text`` with every non-printable character but line breaks and tabs escaped (``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ascii(ch)[1:-1] for ch in text)


class TerminalStream(io.TextIOBase):
    """A text stream writing through :func:`terminal` to ``stream`` (the CLI wraps stdout and stderr
    in it: a name a message forgot to escape still cannot move the cursor, clear the screen or
    reorder what the terminal shows)."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(terminal(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.stream.close()

    def __del__(self) -> None:  # IOBase would close() the wrapped stream when the wrapper goes
        pass

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")
