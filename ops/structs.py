"""Immutable records with named fields, as ``collections.namedtuple`` makes
them, without importing collections.

`list` and a deploy with nothing to do cost mostly Python's start-up and
ops's imports.  ``collections`` (with operator, keyword and reprlib) and
namedtuple's compiling of a ``__new__`` for each of the thirty-odd record
classes (the steps of a plan, the bundle's records) were a tenth of an
unchanged deploy.  :func:`struct` builds the same kind of class: a tuple
subclass (equal to the plain tuple of its values, unpacked, indexed) with a
read-only property per field, keyword arguments and defaults, ``_fields``,
``_asdict``, ``_replace`` and namedtuple's ``repr``.
"""

import sys

try:
    from _collections import _tuplegetter      # the C accessor namedtuple itself uses
except ImportError:                             # pragma: no cover (another Python)
    from operator import itemgetter as _itemgetter

    def _tuplegetter(index, doc):
        return property(_itemgetter(index), doc=doc)

__all__ = ["struct"]


def struct(typename, field_names, defaults=(), members=None):
    """A tuple subclass named ``typename`` with the fields ``field_names`` (a
    string of names separated by spaces, or a sequence); ``defaults`` for the
    rightmost fields, as namedtuple's; ``members``: more class members
    (methods, properties, a docstring), so that a record with behaviour is
    one class, not a namedtuple and a subclass of it."""
    fields = tuple(field_names.split() if isinstance(field_names, str) else field_names)
    count, defaults = len(fields), tuple(defaults)
    first_default = count - len(defaults)
    new_tuple = tuple.__new__

    def __new__(cls, *args, **kwargs):
        if len(args) > count:
            raise TypeError("%s() takes %d arguments but %d were given"
                            % (typename, count, len(args)))
        if kwargs or len(args) < count:
            values = list(args)
            for i in range(len(args), count):
                if fields[i] in kwargs:
                    values.append(kwargs.pop(fields[i]))
                elif i >= first_default:
                    values.append(defaults[i - first_default])
                else:
                    raise TypeError("%s() missing required argument: %r" % (typename, fields[i]))
            if kwargs:
                raise TypeError("%s() got an unexpected keyword argument %r"
                                % (typename, next(iter(kwargs))))
            args = values
        return new_tuple(cls, args)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % pair for pair in zip(fields, self)))

    def _asdict(self):
        return dict(zip(fields, self))

    def _replace(self, **changes):
        return type(self)(*[changes.pop(f, v) for f, v in zip(fields, self)], **changes)

    def __getnewargs__(self):
        return tuple(self)

    body = {"__slots__": (), "__doc__": "%s(%s)" % (typename, ", ".join(fields)),
            "__module__": sys._getframe(1).f_globals.get("__name__", "__main__"),
            "_fields": fields, "_field_defaults": dict(zip(fields[first_default:], defaults)),
            "__new__": __new__, "__repr__": __repr__, "_asdict": _asdict,
            "_replace": _replace, "__getnewargs__": __getnewargs__}
    for i, name in enumerate(fields):
        body[name] = _tuplegetter(i, "Alias for field number %d" % i)
    body.update(members or {})
    return type(typename, (tuple,), body)
