"""Decode JSON strictly, as ops reads a bundle's manifest (SPEC §1).

Stricter than :func:`json.loads`: UTF-8 without a byte order mark, no
``NaN``/``Infinity``, no integer of more than 4000 digits, no key twice in
one object (rkt, in Go, would silently take the last one).  Every failure is
a :class:`JSONProblem` that says what, and where (line and column) when a
place in the text is to blame.
"""

import json

__all__ = ["JSONProblem", "loads", "MAX_INT_DIGITS"]

MAX_INT_DIGITS = 4000


class JSONProblem(ValueError):
    """``what`` is wrong; ``line`` and ``column`` (1-based) say where, or are
    None when the problem is the text as a whole."""

    def __init__(self, what, line=None, column=None):
        super().__init__(what)
        self.what, self.line, self.column = what, line, column


def loads(raw):
    """The value the JSON ``raw`` (bytes in UTF-8, or str) holds; raises JSONProblem."""
    if isinstance(raw, bytes):
        if raw.startswith(b"\xef\xbb\xbf"):
            raise JSONProblem("starts with a UTF-8 byte order mark; save it without one")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONProblem("not valid UTF-8 (byte %d)" % e.start)
    else:
        text = raw
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int,
                          object_pairs_hook=_unique_keys)
    except _Duplicate as e:
        raise JSONProblem("duplicate key %s in one object (each key may appear once)"
                          % json.dumps(e.args[0]))
    except json.JSONDecodeError as e:
        raise JSONProblem(e.msg, e.lineno, e.colno)
    except _BadToken as e:
        raise JSONProblem(e.what, *_position(text, e.token))
    except RecursionError:
        raise JSONProblem("nested too deeply")


def _no_constant(token):
    raise _BadToken(token, "%s is not valid JSON" % token)


def _bounded_int(token):
    if len(token) > MAX_INT_DIGITS:
        raise _BadToken(token, "a number with %d digits is too large" % len(token))
    return int(token)


def _unique_keys(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise _Duplicate(k)
            seen.add(k)
    return obj


class _Duplicate(Exception):
    """A JSON object holds the same key twice (args[0])."""


class _BadToken(ValueError):
    def __init__(self, token, what):
        super().__init__(what)
        self.token, self.what = token, what


def _position(text, token):
    """Line and column of the first ``token`` outside JSON strings."""
    i, n, in_string = 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif text.startswith(token, i):
            break
        i += 1
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1
