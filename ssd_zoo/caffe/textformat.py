"""Protobuf *text format* (what .prototxt files are) -> ``TextMessage`` trees.

Handles comments, ``;``/``,`` separators, ``<>`` braces, ``f: [1, 2]`` lists, string
concatenation and escapes; syntax errors name file:line:column.
"""
from __future__ import annotations

import re
from typing import List, Sequence, Tuple

from .proto import CaffeFormatError

class TextMessage:
    """One protobuf text-format message: ordered (field, value) pairs.

    Values are ``int``/``float`` (numbers), ``str`` (quoted strings and bare identifiers
    such as enum names or ``true``) or nested ``TextMessage``.
    """

    def __init__(self, items: List[Tuple[str, object]] | None = None, where: str = ""):
        self.items = items if items is not None else []
        self.where = where  # "file:line" of the opening brace, for error messages

    def all(self, name: str) -> list:
        return [v for k, v in self.items if k == name]

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.items)

    def get(self, name: str, default=None):
        vals = self.all(name)
        return vals[-1] if vals else default  # protobuf: last occurrence wins

    def msg(self, name: str) -> "TextMessage":
        """Sub-message ``name`` (an empty message when absent, like protobuf defaults)."""
        val = self.get(name)
        if val is None:
            return TextMessage(where=self.where)
        if not isinstance(val, TextMessage):
            raise CaffeFormatError(f"{self.where}: field '{name}' must be a message")
        return val

    def num(self, name: str, default=None, kind=float):
        val = self.get(name, default)
        if val is None or isinstance(val, TextMessage):
            return val if val is None else self._bad(name, val)
        try:
            return kind(val) if kind is not int else int(float(val))
        except (TypeError, ValueError):
            return self._bad(name, val)

    def nums(self, name: str, kind=float) -> list:
        try:
            return [kind(v) if kind is not int else int(float(v)) for v in self.all(name)]
        except (TypeError, ValueError):
            return self._bad(name, self.all(name))

    def flag(self, name: str, default: bool) -> bool:
        val = self.get(name)
        if val is None:
            return default
        text = str(val).lower()
        if text in ("true", "t", "1"):
            return True
        if text in ("false", "f", "0"):
            return False
        return self._bad(name, val)

    def enum(self, name: str, names: Sequence[str], default: str) -> str:
        """Enum field as its upper-case name; ``names[i]`` is the name of value ``i``."""
        val = self.get(name)
        if val is None:
            return default
        if isinstance(val, (int, float)) or str(val).lstrip("-").isdigit():
            idx = int(val)
            if 0 <= idx < len(names) and names[idx]:
                return names[idx]
        elif str(val).upper() in names:
            return str(val).upper()
        return self._bad(name, val)

    def _bad(self, name, val):
        raise CaffeFormatError(f"{self.where}: field '{name}' has an invalid value {val!r}")


_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[{}:;,<>\[\]])
  | (?P<word>[A-Za-z0-9_.+\-]+)
""", re.VERBOSE)
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|nan)[fF]?$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def _tokens(text: str, source: str) -> List[Tuple[str, str, int, int]]:
    out, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CaffeFormatError(f"{source}:{line}:{pos - line_start + 1}: syntax error: "
                                   f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind != "space":
            out.append((kind, m.group(), line, pos - line_start + 1))
        newlines = m.group().count("\n")
        if newlines:
            line += newlines
            line_start = m.start() + m.group().rfind("\n") + 1
        pos = m.end()
    return out


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def parse_prototxt(text: str, source: str = "<prototxt>") -> TextMessage:
    """Parse protobuf text format (comments, ``;``/``,`` separators, ``<>`` braces)."""
    toks = _tokens(text, source)
    pos = 0

    def where(i):
        if i < len(toks):
            return f"{source}:{toks[i][2]}:{toks[i][3]}"
        return f"{source}: end of file"

    def parse_message(close: str | None, open_where: str) -> TextMessage:
        nonlocal pos
        msg = TextMessage(where=open_where)
        while True:
            if pos >= len(toks):
                if close is None:
                    return msg
                raise CaffeFormatError(f"{where(pos)}: syntax error: missing '{close}' "
                                       f"for the message opened at {open_where}")
            kind, tok, _, _ = toks[pos]
            if kind == "punct" and tok == close:
                pos += 1
                return msg
            if kind == "punct" and tok in ";,":
                pos += 1
                continue
            if kind != "word" or _NUMBER.match(tok):
                raise CaffeFormatError(f"{where(pos)}: syntax error: expected a field name, "
                                       f"got {tok!r}")
            name, name_at = tok, pos
            pos += 1
            colon = pos < len(toks) and toks[pos][1] == ":"
            if colon:
                pos += 1
            if pos < len(toks) and toks[pos][1] in "{<":
                closer = "}" if toks[pos][1] == "{" else ">"
                pos += 1
                msg.items.append((name, parse_message(closer, where(pos - 1))))
                continue
            if not colon:
                raise CaffeFormatError(f"{where(pos)}: syntax error: expected ':' or '{{' "
                                       f"after field '{name}' ({where(name_at)})")
            if pos < len(toks) and toks[pos][1] == "[":  # list shorthand: f: [1, 2]
                pos += 1
                while pos < len(toks) and toks[pos][1] != "]":
                    if toks[pos][1] != ",":
                        msg.items.append((name, scalar(name)))
                    else:
                        pos += 1
                pos += 1
                continue
            msg.items.append((name, scalar(name)))

    def scalar(name: str):
        nonlocal pos
        if pos >= len(toks) or toks[pos][0] == "punct":
            got = toks[pos][1] if pos < len(toks) else "end of file"
            raise CaffeFormatError(f"{where(pos)}: syntax error: expected a value for "
                                   f"field '{name}', got {got!r}")
        kind, tok, _, _ = toks[pos]
        pos += 1
        if kind == "string":
            val = _unquote(tok)
            while pos < len(toks) and toks[pos][0] == "string":  # "a" "b" concatenation
                val += _unquote(toks[pos][1])
                pos += 1
            return val
        if _NUMBER.match(tok):
            core = tok.rstrip("fF") if not tok.lower().endswith("inf") else tok
            if re.match(r"^[-+]?\d+$", core):
                return int(core)
            return float(core)
        return tok

    return parse_message(None, f"{source}:1")
