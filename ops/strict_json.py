"""Decode JSON strictly, as ops reads a bundle's manifest (SPEC §1).

Stricter than :func:`json.loads`: UTF-8 without a byte order mark, no
``NaN``/``Infinity`` and no number too large for a double (``1e999``, which
:mod:`json` reads as infinity), no integer of more than 4000 digits, no
nesting deeper than 512, no key twice in one object (rkt, in Go, would
silently take the last one).  It holds for the whole text, wherever the
value is.  Every failure is
a :class:`JSONProblem` that says what, and where (line and column) when a
place in the text is to blame.

The text is read by the scanner of :mod:`json` (its C part, ``_json``),
driven here: ``import json`` loads :mod:`re`, which costs a large part of
Python's start-up, and ops reads JSON on every command that reads its
state.  :mod:`json` itself is loaded only to say what is wrong with a text
(and where ``_json`` is missing).
"""

__all__ = ["JSONProblem", "loads", "load_file", "quoted", "MAX_INT_DIGITS", "MAX_DEPTH", "MAX_FILE"]

MAX_INT_DIGITS = 4000
MAX_DEPTH = 512          # arrays and objects inside each other (Go's encoding/json: 10000)
MAX_FILE = 16 << 20      # bytes: the most load_file reads (ops's own files are far smaller)
_EFBIG = 27              # errno.EFBIG, without importing errno for it


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
    depth = _depth(text) if text.count("[") + text.count("{") > MAX_DEPTH else 0
    if depth > MAX_DEPTH:
        raise JSONProblem("nested too deeply (%s levels of arrays and objects; at most %d)"
                          % (depth if depth < 10 * MAX_DEPTH else "over %d" % (10 * MAX_DEPTH),
                             MAX_DEPTH))
    try:
        return _decode(text)
    except _Duplicate as e:
        raise JSONProblem("duplicate key %s in one object (each key may appear once)"
                          % quoted(e.args[0]))
    except _Invalid as e:
        raise JSONProblem(e.args[0].msg, e.args[0].lineno, e.args[0].colno)
    except _BadToken as e:
        raise JSONProblem(e.what, *_position(text, e.token))
    except RecursionError:
        raise JSONProblem("nested too deeply")


def quoted(text):
    """``text`` as a JSON string (for a message: json is loaded then only)."""
    import json
    return json.dumps(text)


_WHITESPACE = " \t\n\r"       # JSON's


def _decode(text):
    """The value of the JSON ``text``, as ``json.loads`` with the hooks
    below reads it; json.JSONDecodeError as _Invalid."""
    scan = _scanner()
    if scan is not None:
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = scan(text, start)
        except (_BadToken, _Duplicate):
            raise
        except (ValueError, StopIteration, SystemError):
            # not JSON: json.loads below says what, and where (before 3.12
            # _json raises its error only when json.decoder is already loaded,
            # and a SystemError otherwise)
            pass
        else:
            if len(text.rstrip(_WHITESPACE)) <= end:
                return value
    import json
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int,
                          parse_float=_finite_float, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise _Invalid(e)


def _scanner():
    """``_json``'s scanner with the hooks below (as json.JSONDecoder makes
    it), or None when Python has no ``_json``."""
    global _scan
    if _scan is None:
        try:
            from _json import make_scanner
        except ImportError:
            _scan = False
        else:
            _scan = make_scanner(_Context())
    return _scan or None


_scan = None


class _Context(object):
    """What ``_json.make_scanner`` reads from a JSONDecoder."""
    strict = True
    object_hook = None

    def __init__(self):
        self.object_pairs_hook = _unique_keys
        self.parse_float = _finite_float
        self.parse_int = _bounded_int
        self.parse_constant = _no_constant
        self.memo = {}


class _Invalid(Exception):
    """json.JSONDecodeError (args[0]), which json was loaded to say."""


def load_file(path, limit=MAX_FILE):
    """The JSON value file ``path`` holds, read as :func:`loads` reads text,
    and at most ``limit`` bytes of it (a larger file is a JSONProblem).
    Raises OSError (cannot be read) or JSONProblem: never anything else."""
    from ops import confine      # ops's own files: no link followed, no FIFO waited on
    try:
        raw = confine.read_file(path, limit)
    except OSError as e:
        if e.errno == _EFBIG:
            raise JSONProblem("larger than %d bytes" % limit)
        raise
    return loads(raw)


def _depth(text):
    """How deeply arrays and objects nest in ``text`` (brackets inside JSON
    strings do not count); stops counting well past MAX_DEPTH."""
    if "[" not in text and "{" not in text:
        return 0
    import re
    depth = top = 0
    # strings first, so that their brackets are skipped whole
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > top:
                top = depth
                if top > 10 * MAX_DEPTH:
                    break
        elif c in "]}":
            depth -= 1
    return top


def _finite_float(token):
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise _BadToken(token, "the number %s is too large (JSON numbers here must fit a "
                        "double)" % (token if len(token) <= 40 else token[:37] + "..."))
    return value


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
