"""ops.structs builds the records ops used namedtuple for: whatever a caller
does with one (build it by position or keyword, with defaults, compare,
unpack, index, hash, print, _replace, _asdict), it gets what the
namedtuple of the same fields gives."""

import pickle
from collections import namedtuple

import pytest
from hypothesis import given, strategies as st

from ops import actions, records
from ops.structs import struct

FIELDS = "name source start instances"
DEFAULTS = (None, 1)
Ours = struct("UnitSpec", FIELDS, defaults=DEFAULTS)
Theirs = namedtuple("UnitSpec", FIELDS, defaults=DEFAULTS)

values = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans())


def both(*args, **kwargs):
    """(ours, namedtuple's) of the same call, or the exception types both raise."""
    out = []
    for cls in (Ours, Theirs):
        try:
            out.append(cls(*args, **kwargs))
        except TypeError:
            out.append(TypeError)
    return out


@given(st.lists(values, max_size=5),
       st.dictionaries(st.sampled_from(FIELDS.split() + ["other"]), values, max_size=3))
def test_built_as_namedtuple_builds_it(args, kwargs):
    ours, theirs = both(*args, **kwargs)
    if theirs is TypeError:
        assert ours is TypeError
        return
    assert ours == theirs and tuple(ours) == tuple(theirs)
    assert repr(ours) == repr(theirs)
    assert hash(ours) == hash(theirs)
    assert [getattr(ours, f) for f in Ours._fields] == [getattr(theirs, f) for f in Theirs._fields]
    assert ours._asdict() == dict(theirs._asdict())
    assert ours._replace(start="x") == theirs._replace(start="x")


def test_fields_are_read_only_and_unknown_ones_refused():
    u = Ours("a.service", None)
    assert (u.start, u.instances) == (None, 1) and Ours._field_defaults == Theirs._field_defaults
    with pytest.raises(AttributeError):
        u.name = "b.service"
    with pytest.raises(AttributeError):
        u.other = 1                      # __slots__: no instance dict
    with pytest.raises(TypeError):
        u._replace(other=1)
    with pytest.raises(TypeError):
        Ours()
    with pytest.raises(TypeError):
        Ours(1, 2, 3, 4, 5)


def test_the_steps_and_records_of_ops_are_built_by_it():
    step = actions.Start(("a.service", "b.service"))
    assert tuple(step) == (("a.service", "b.service"),) and step.units == ("a.service", "b.service")
    # a step equals a step of its own kind only: a plan compared with the steps it should hold
    # must not pass with the wrong verb
    assert step == actions.Start(("a.service", "b.service"))
    assert step != actions.Stop(("a.service", "b.service")) and step != tuple(step)
    assert step in {actions.Start(("a.service", "b.service"))}
    assert step not in {actions.Stop(("a.service", "b.service"))}
    assert step.to_json() == {"action": "start", "units": ["a.service", "b.service"]}
    assert repr(step) == "Start(units=('a.service', 'b.service'))"
    art = records.Artifact("x.tar", "/b/x.tar")
    assert (art.uri, art._replace(uri="https://h/x.tar").uri) == (None, "https://h/x.tar")
    assert pickle.loads(pickle.dumps(art)) == art and pickle.loads(pickle.dumps(step)) == step
