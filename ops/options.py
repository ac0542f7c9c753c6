"""The command line as data: the options and commands of SPEC §3, and how to read them.

``GLOBAL_OPTIONS`` and ``COMMANDS`` describe every option once, with the
function that checks its value.  :func:`build_parser` makes the argparse parser
from them (help, usage errors, every corner case); :func:`_quick_parse` reads
the usual command lines without importing argparse.  A bad value raises
:class:`~ops.errors.UsageError`; :mod:`ops.cli` reports it.
"""

import os

from ops import __version__

# argparse is imported only when a command line needs it: `ops list` runs on
# every Ansible play, and importing argparse costs more than the rest of it.

__all__ = ["GLOBAL_OPTIONS", "COMMANDS", "EXAMPLES", "MUTATING", "parse", "build_parser"]


EXAMPLES = {
    None: """examples:
  ops check ./bundle                   validate a bundle, change nothing
  ops deploy ./bundle                  make the bundle's version current and running
  ops --json deploy ./bundle           the same, one JSON object on stdout (for Ansible)
  ops list                             every stored version
  ops redeploy hello                   go back one version, from the store
  ops undeploy hello --remove          stop the pod and delete everything of it
  ops pin hello:3                      cleanup never deletes hello 3 (ops unpin hello:3)
  ops --root /mnt/image deploy ./b     prepare an offline image (enable only)""",
    "check": "example:\n  ops check ./bundle/pod.json\n  ops --insecure-images check ./bundle",
    "deploy": "examples:\n  ops deploy ./bundle\n  ops --dry-run deploy ./bundle      show the plan"
              "\n  ops deploy ./bundle --json --settle 5"
              "\nhealth check: with \"health\" in the ops annotation, e.g."
              "\n  {\"http\": \"http://127.0.0.1:8080/\", \"status\": 200, \"retries\": 5, \"interval\": 1}"
              "\n  {\"exec\": [\"/bin/sh\", \"-c\", \"test -s /run/app/ready\"], \"timeout\": 5}"
              "\nit runs after the settle; when it fails the pod is rolled back (exit 1)",
    "redeploy": "examples:\n  ops redeploy hello:1     run stored version 1 again\n"
                "  ops redeploy hello       the newest older version whose last outcome is ok",
    "undeploy": "examples:\n  ops undeploy hello              stop and remove the current version's units"
                "\n  ops undeploy hello --remove     also delete every stored version"
                "\n  ops undeploy hello:3 --remove   delete stored version 3 only",
    "list": "examples:\n  ops list\n  ops list --json hello",
    "status": "examples:\n  ops status             every pod: units, live state, drift\n"
              "  ops --json status hello\n"
              "  ops status --health    also run each pod's health check now\n"
              "exit 0: all good; 5: drift, a unit down or failed, a failed health check,\n"
              "or an interrupted run",
    "cleanup": "examples:\n  ops cleanup                 keep the current and 1 newer other per pod"
               "\n  ops cleanup --keep 0 hello  keep hello's current version (and pins, and the"
               "\n                              newest ok version before it)",
    "pin": "examples:\n  ops pin hello:3      cleanup keeps hello 3; undeploy --remove refuses it"
           "\n  ops list hello       pinned versions show \"(pinned)\"",
    "unpin": "example:\n  ops unpin hello:3    cleanup may delete hello 3 again",
    "history": "examples:\n  ops history hello          every change to hello, oldest first"
               "\n  ops --json history hello   the same as JSON (\"history\": [...])"
               "\nkept in /etc/ops/history/NAME.jsonl (the newest 1000 events, at most 1 MiB);"
               "\nundeploy --remove and cleanup keep it",
    "diff": "examples:\n  ops diff hello:1 hello:2        what changed from version 1 to 2"
            "\n  ops diff hello ./bundle         what deploying ./bundle would change"
            "\n  ops --json diff hello hello:1   the same as JSON (\"differs\", \"diff\", "
            "\"changes\")"
            "\nTARGET is a bundle when it holds a '/' or names an existing file or directory;"
            "\nexit 0 whether or not they differ (nothing printed when they are the same)",
    "logs": "examples:\n  ops logs hello                the last 100 lines of every unit of hello"
            "\n  ops logs hello -f -n 20       the last 20, then follow (Ctrl-C stops)"
            "\n  ops logs hello --version 2    the units of stored version 2"
            "\n  ops --json logs hello -n 5    the entries as objects (journalctl -o json)"
            "\nit runs journalctl --no-pager -n N -u UNIT... (refused with --root)",
}

MUTATING = ("deploy", "redeploy", "undeploy", "cleanup", "pin", "unpin")


# Limits of the option values: a value outside them is a typo or an attack,
# and past them Python itself fails (a socket timeout of 1e300 overflows).
MAX_SECONDS = 7 * 24 * 3600


def _seconds(text, least=0.0, what="a number of seconds >= 0"):
    # plain decimal only: float() would also take '1_0', ' 5', '١', 'nan', '1e300'
    whole, _, fraction = text.partition(".")
    if not ((whole or fraction) and len(whole) <= 9 and len(fraction) <= 9
            and all(c in "0123456789" for c in whole + fraction)):
        raise ValueError("%r is not %s (digits and an optional '.')" % (text, what))
    v = float(text)
    if v < least or v > MAX_SECONDS:
        raise ValueError("%r: must be %s and at most %d (a week)" % (text, what, MAX_SECONDS))
    return v


def _timeout(text):
    return _seconds(text, 0.001, "a number of seconds > 0")


def _count(text):
    if not (text and all("0" <= c <= "9" for c in text)):
        raise ValueError("%r is not a whole number >= 0" % text)
    if len(text) > 9:
        raise ValueError("%r: must be at most 999999999" % text)
    return int(text)


def _version(text):
    """A stored version, as NAME:VERSION takes it: any version SPEC allows."""
    from ops.index import is_version
    if not (text and all("0" <= c <= "9" for c in text)):
        raise ValueError("%r is not a version (a whole number >= 0)" % text)
    if not is_version(text):
        raise ValueError("%r: a version is below 2^63 (9223372036854775808)" % text)
    return int(text)


def _root(text):
    """The real path of an existing directory: any spelling of / (//, /., a
    symbolic link to /) is the live host, never offline mode."""
    if not text:
        raise ValueError("empty; give a directory (--root / is this host)")
    real = os.path.realpath(text)
    if not os.path.isdir(real):
        raise ValueError("%r: %s" % (text, "not a directory" if os.path.exists(real)
                                     else "no such directory"))
    return real


def _executable(text):
    if not os.path.isfile(text) or not os.access(text, os.X_OK):
        raise ValueError("%r: %s" % (text, "a directory, not a program" if os.path.isdir(text)
                                     else "not an executable file" if os.path.exists(text)
                                     else "no such file"))
    return text


def _ca_file(text):
    """A readable file of PEM CA certificates, as ssl loads it for downloads."""
    from ops import confine
    try:        # a regular file: a FIFO is not waited on (nor by ssl after it)
        data = confine.read_file(text, 1 << 24)
    except OSError as e:
        raise ValueError("%r: cannot read: %s" % (text, e.strerror or e))
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError("%r: not a PEM file of CA certificates" % text)
    from ops.errors import UsageError
    from ops.fetch import tls_context      # the TLS settings downloads use, loaded once here
    try:
        tls_context(text)
    except UsageError as e:
        raise ValueError("%r: cannot load the CA certificates (%s)" % (text, e.what))
    return text


# The command line as data: build_parser() makes the argparse parser from it,
# and _quick_parse() reads the common command lines with it directly.
# (flags, dest, convert or None for a flag, default, metavar, help)
GLOBAL_OPTIONS = (
    (("--root",), "root", _root, "/", "DIR", "act on the tree at DIR (offline: enable/disable only)"),
    (("--dry-run",), "dry_run", None, False, None, "print the plan, change nothing"),
    (("--json",), "json", None, False, None, "print one JSON object on stdout"),
    (("-v", "--verbose"), "verbose", None, False, None, "show every external command"),
    (("-q", "--quiet"), "quiet", None, False, None, "no progress lines"),
    (("--lock-timeout",), "lock_timeout", _seconds, 120.0, "S",
     "seconds to wait for the lock (default 120)"),
    (("--rkt",), "rkt", _executable, None, "PATH", "the rkt binary (default $OPS_RKT, then PATH)"),
    (("--settle",), "settle", _seconds, 2.0, "S",
     "seconds started units must stay active (default 2)"),
    (("--stop-timeout",), "stop_timeout", _timeout, 30.0, "S",
     "seconds a unit may take to stop before ops kills it (default 30)"),
    (("--timeout",), "timeout", _timeout, 30.0, "S", "download connect/read timeout (default 30)"),
    (("--ca-file",), "ca_file", _ca_file, None, "F", "extra CA certificates for https downloads"),
    (("--insecure-images",), "insecure_images", None, False, None,
     "accept images with neither id nor signature"),
)
EXCLUSIVE = ("verbose", "quiet")

# name -> (help, (dest, metavar, nargs (None: one), help) or a tuple of them, options like
# GLOBAL_OPTIONS)
COMMANDS = {
    "check": ("validate a bundle and its unit files (systemd-analyze verify); changes nothing",
              ("bundle", "BUNDLE", None, "pod.json or the directory holding it"), ()),
    "deploy": ("make the bundle's version the current, running version of its pod",
               ("bundle", "BUNDLE", None, "pod.json or the directory holding it"), ()),
    "redeploy": ("make a stored version current again, without the bundle",
                 ("ref", "NAME[:VERSION]", None, None), ()),
    "undeploy": ("stop and remove the current version's units",
                 ("ref", "NAME[:VERSION]", None, None),
                 ((("--remove",), "remove", None, False, None,
                   "also delete the stored version(s), their volumes and unused images"),)),
    "list": ("every stored version; changes nothing", ("name", "NAME", "?", None), ()),
    "status": ("each pod's units, their live state and drift; reads only (exit 5: drift)",
               ("name", "NAME", "?", None),
               ((("--health",), "health", None, False, None,
                 "also run each current version's health check now (exit 5 when it fails; "
                 "refused with --root)"),)),
    "cleanup": ("delete old stored versions", ("names", "NAME", "*", None),
                ((("--keep",), "keep", _count, 1, "N",
                  "besides the current version, keep the N newest (default 1)"),)),
    "pin": ("protect a stored version from cleanup and undeploy --remove",
            ("ref", "NAME:VERSION", None, None), ()),
    "unpin": ("remove the protection of ops pin", ("ref", "NAME:VERSION", None, None), ()),
    "history": ("every deploy, redeploy, rollback, undeploy and cleanup of a pod, oldest "
                "first; reads only", ("name", "NAME", None, None), ()),
    "diff": ("what changes between a stored version and another, or a bundle: unit files "
             "(a unified diff), images, volumes, instances, health check; reads only",
             (("ref", "NAME[:A]", None, "a stored version (NAME alone: the current one)"),
              ("target", "TARGET", None, "NAME:B (a stored version), or a bundle: a path with "
               "a '/' or an existing directory")), ()),
    "logs": ("the journal of every unit of the pod's current version (journalctl)",
             ("name", "NAME", None, None),
             ((("-n", "--lines"), "lines", _count, 100, "N", "the last N lines (default 100)"),
              (("-f", "--follow"), "follow", None, False, None,
               "then follow new lines, until Ctrl-C (not with --json)"),
              (("--version",), "log_version", _version, None, "V",
               "the units of stored version V instead of the current one"))),
}


def parse(argv):
    """The options of ``argv`` as an argparse-like namespace.  Raises
    UsageError for a bad command line, SystemExit for --help and --version."""
    return _quick_parse(argv) or build_parser().parse_args(argv)


def build_parser():
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message):
            from ops.errors import UsageError
            raise UsageError(self.prog, message)

        def parse_args(self, args=None, namespace=None):
            ns = super().parse_args(args, namespace)
            if all(getattr(ns, d, False) for d in EXCLUSIVE):    # one before, one after
                self.error("argument -q/--quiet: not allowed with argument -v/--verbose")
            return ns

    def add(parser, options, suppress=False):
        # a global option after the command (suppress): only given ones are
        # set, so that the subparser's defaults do not undo those before it
        group = None
        for flags, dest, convert, default, metavar, help_ in options:
            target = parser
            if dest in EXCLUSIVE:
                group = target = group or parser.add_mutually_exclusive_group()
            if suppress:
                default = argparse.SUPPRESS
            if convert is None:
                target.add_argument(*flags, dest=dest, action="store_true", help=help_,
                                    **({"default": default} if suppress else {}))
            else:
                target.add_argument(*flags, dest=dest, type=_for_argparse(convert),
                                    default=default, metavar=metavar, help=help_)

    raw = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="ops", description="Deploy a pod of rkt containers and their systemd "
                "units from a bundle; keep every version; roll back on failure.",
                epilog=EXAMPLES[None], formatter_class=raw)
    p.add_argument("--version", action="version", version="ops " + __version__)
    add(p, GLOBAL_OPTIONS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, positionals, options) in COMMANDS.items():
        c = sub.add_parser(name, help=help_, description=help_, epilog=EXAMPLES[name],
                           formatter_class=raw)
        for dest, metavar, nargs, arg_help in _positionals(positionals):
            c.add_argument(dest, nargs=nargs, metavar=metavar, help=arg_help)
        add(c, options)
        add(c.add_argument_group("global options (before or after COMMAND)"), GLOBAL_OPTIONS,
            suppress=True)
    return p


def _positionals(spec):
    return spec if isinstance(spec[0], tuple) else (spec,)


def _for_argparse(convert):
    if convert is str:
        return str

    def checked(text):
        import argparse
        try:
            return convert(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
    return checked


class _Args:
    """What argparse.Namespace holds, for a command line read by _quick_parse."""

    def __init__(self, values):
        self.__dict__.update(values)


def _quick_parse(argv):
    """The usual command lines, read without argparse (importing it costs more
    than the rest of `ops list`).  Only exact option names, each value valid;
    anything else (help, abbreviations, ``--``, an error) returns None and
    argparse reads it, so every message and corner case stays argparse's."""
    values = {dest: default for _, dest, _, default, _, _ in GLOBAL_OPTIONS}
    options = {f: o for o in GLOBAL_OPTIONS for f in o[0]}
    positional = None
    rest = []
    rest_closed = False       # argparse takes the positional arguments as one run
    it = iter(argv)
    for token in it:
        if not token:
            return None
        if token[0] != "-":
            if positional is not None:
                if rest_closed:
                    return None
                rest.append(token)
                continue
            if token not in COMMANDS or isinstance(COMMANDS[token][1][0], tuple):
                return None         # several positional arguments: argparse reads them
            _, (positional, _, nargs, _), sub = COMMANDS[token]
            values["command"] = token
            for _, dest, _, default, _, _ in sub:
                values[dest] = default
            options.update((f, o) for o in sub for f in o[0])   # global options stay valid
            continue
        flag, eq, value = token.partition("=")
        if flag not in options:
            return None
        rest_closed = bool(rest)
        _, dest, convert, _, _, _ = options[flag]
        if convert is None:
            if eq:
                return None
            values[dest] = True
            continue
        if not eq:
            value = next(it, "")
        if not value or value[0] == "-":
            return None
        try:
            values[dest] = convert(value)
        except ValueError:
            return None
    if positional is None or all(values[d] for d in EXCLUSIVE):
        return None
    if nargs == "*":
        values[positional] = rest
    elif nargs == "?" and len(rest) <= 1:
        values[positional] = rest[0] if rest else None
    elif nargs is None and len(rest) == 1:
        values[positional] = rest[0]
    else:
        return None
    return _Args(values)
