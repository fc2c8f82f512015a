r"""Names and messages as text that is safe to show: on a terminal, in a TSV, in a report.

The rule (documented in full in `fmtool.cli.output`): a backslash as two; tab, newline and
carriage return as `\t`, `\n`, `\r`; any other C0 control and DEL as `\xHH`; a byte of a file
name that is not UTF-8 (Python's surrogateescape) as `\xHH`; C1 controls, U+2028/U+2029 and the
bidirectional controls as the `\xHH` of each of their UTF-8 bytes. It is undone exactly by
`os.fsdecode(codecs.escape_decode(text.encode())[0])`. Lower layers that write text for people
(`fmtool report`'s documents) use it as the terminal does.
"""

from __future__ import annotations

import math
import re

_UNSAFE = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _hex_bytes(text: str) -> str:
    """`text` as the \\xHH of its UTF-8 bytes: a lone surrogate from surrogateescape gives back
    the byte of the name that was not UTF-8; other lone surrogates (never in a file name) their
    surrogatepass bytes."""
    out = []
    for char in text:
        code = ord(char)
        data = char.encode("utf-8", "surrogateescape" if 0xDC80 <= code <= 0xDCFF
                           else "surrogatepass")
        out.append("".join(f"\\x{byte:02x}" for byte in data))
    return "".join(out)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return _hex_bytes(char)


def escape(value: object) -> str:
    """`value` as text that is safe to show (see the module docstring for the rule)."""
    return _UNSAFE.sub(_escaped, str(value))


def escape_controls(value: object) -> str:
    """Like `escape`, but a backslash stays one: for documents (HTML, Markdown) that escape
    their own syntax, where only what could reorder or hide text must go."""
    return _UNSAFE.sub(lambda m: m.group() if m.group() == "\\" else _escaped(m), str(value))


def number_or_na(value: float, digits: int = 3) -> str:
    """`value` with `digits` decimals, or n/a where it is undefined (NaN: a class with no test
    image has no accuracy)."""
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def utf8_bytes(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: what a stream's encoding cannot write, as the \\xHH of its UTF-8
    bytes (the rule above, so the same decoding gives the text back)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return _hex_bytes(error.object[error.start:error.end]), error.end
