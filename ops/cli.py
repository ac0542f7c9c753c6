"""The command line: output and exit codes (SPEC §3); the arguments are in ops.options.

This is the only module that prints results or turns an
:class:`~ops.errors.OpsError` into ``ops: error: WHERE: WHAT`` and its exit
code.  ``main(argv)`` returns the exit status, so tests call it in-process.
"""

import os
import sys

from ops import __version__, log, options, signals
from ops.result import Result

# json is imported when needed: `ops --version` and `ops list`
# run on every Ansible play, and start-up time counts there.

__all__ = ["main"]


def main(argv=None):
    """Run ops; return its exit status.  ``argv`` None: the program's own
    arguments, and the signal handlers stay in place until the process exits
    (a signal after the output is written cannot turn into a second one)."""
    with signals.trap(restore=argv is not None):
        if argv is None:
            argv = sys.argv[1:]
        return _main(argv)


def _main(argv):
    for stream in (sys.stdout, sys.stderr):
        try:       # a non-UTF-8 locale must not turn a message into a traceback
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    json_mode = "--json" in argv
    try:
        if argv == ["--version"]:
            _out("ops " + __version__)
            return 0
        args = options.parse(argv)
    except SystemExit as e:            # --help and --version
        return e.code or 0
    except KeyboardInterrupt as e:
        command = next((a for a in argv if a in options.COMMANDS), "usage")
        return _fail(_failed(command, "interrupted by " + signals.Interrupted.name_of(e)), json_mode, command, None)
    except Exception as e:             # UsageError
        return _fail(e, json_mode, "usage", None)
    try:
        log.set_verbosity(0 if args.quiet else 2 if args.verbose else 1)
        if not args.command:
            return _fail(_usage("ops", "a COMMAND is required (see ops --help)"), json_mode,
                         "usage", None)
        return _run(args)
    except KeyboardInterrupt as e:
        return _fail(_failed(args.command, "interrupted by " + signals.Interrupted.name_of(e)), args.json, args.command, args)
    except Exception as e:
        return _fail(e, args.json, args.command, args)


def _usage(where, what):
    from ops.errors import UsageError
    return UsageError(where, what)


def _failed(where, what):
    from ops.errors import Failed
    return Failed(where, what)


def _run(args):
    from ops import commands
    from ops.layout import Layout
    layout = Layout(args.root)
    escape = layout.escape()
    if escape and args.command != "check":
        raise _usage(escape[0], "leads outside --root %s (to %s); ops does not write outside "
                     "the tree" % (layout.root, escape[1]))
    if args.command == "list":
        return _print_list(commands.list_versions(layout, args.name, args.json), args)
    from ops.host import Host
    host = Host(root=args.root, rkt=args.rkt, settle=args.settle, timeout=args.timeout,
                ca_file=args.ca_file, insecure_images=args.insecure_images,
                dry_run=args.dry_run)
    if args.command in options.MUTATING and not args.dry_run and not host.layout.offline \
            and os.geteuid() != 0:
        raise _usage(args.command, "must run as root (or give --root DIR to prepare an image "
                     "offline)")
    if args.command == "check":
        return _print_check(commands.check(host, args.bundle), args)
    if args.command == "status":
        return _print_status(commands.status(host, args.name), args)
    if args.command == "deploy":
        result = commands.deploy(host, args.bundle, args.lock_timeout)
    elif args.command == "redeploy":
        result = commands.redeploy(host, args.ref, args.lock_timeout)
    elif args.command == "undeploy":
        result = commands.undeploy(host, args.ref, args.remove, args.lock_timeout)
    elif args.command in ("pin", "unpin"):
        result = commands.pin(host, args.ref, args.command == "pin", args.lock_timeout)
    else:
        result = commands.cleanup(host, args.names, args.keep, args.lock_timeout)
    return _print_result(result, args)


def _out(text):
    signals.hold()                  # the result is written whole, or not at all
    log.write(sys.stdout, text + "\n")   # a reader gone (`ops list | head -1`): the rest is dropped


def _out_json(obj):
    import json
    _out(json.dumps(obj))


def _print_result(r, args):
    if args.json:
        r.dry_run = args.dry_run
        _out_json(r.to_json())
        return 0
    if args.dry_run:
        for a in r.actions:
            _out("  " + a.describe())
    if r.command == "cleanup":
        for line in r.lines:
            _out(line)
        return 0
    word = ("would change" if args.dry_run else "changed") if r.changed else "unchanged"
    ref = "%s %s" % (r.name, r.version) if r.version is not None else r.name
    _out("%s %s: %s" % (r.command, ref, word))
    return 0


def _print_check(b, args):
    n_units = len(b.units)
    if args.json:
        _out_json(Result("check", b.name, b.version, dry_run=args.dry_run,
                         units=[u.name for u in b.units],
                         images=[i.source.location for i in b.images],
                         volumes=[v.name for v in b.volumes],
                         health=b.health._asdict() if b.health else None).to_json())
        return 0
    _out("%s %d: valid: %d unit%s, %d image%s, %d volume%s" % (
        b.name, b.version, n_units, "" if n_units == 1 else "s", len(b.images),
        "" if len(b.images) == 1 else "s", len(b.volumes), "" if len(b.volumes) == 1 else "s"))
    for u in b.units:
        extra = []
        if u.start:
            extra.append("start")
        if u.instances is not None:
            extra.append("instances " + " ".join(u.instances))
        _out("  unit   %s%s" % (u.name, " (%s)" % ", ".join(extra) if extra else ""))
    for i in b.images:
        how = ("id " + i.id[:19] + "...") if i.id else "no id"
        how += ", signed" if i.signature else ", unsigned"
        _out("  image  %s (%s)" % (i.source.location, how))
    for v in b.volumes:
        _out("  volume %s <- %s" % (v.name, v.data.location))
    if b.health:
        _out("  health %s" % b.health.describe())
    return 0


def _print_list(rows, args):
    if args.json:
        _out_json(Result("list", args.name, dry_run=args.dry_run, pods=rows).to_json())
        return 0
    if not rows:
        return 0
    table = [("NAME", "VERSION", "CURRENT", "OUTCOME", "DEPLOYED AT")]
    for r in rows:
        table.append((r["name"], str(r["version"]), "*" if r["current"] else "",
                      (r["outcome"] or "-") + (" (pinned)" if r["pinned"] else "")
                      + (" (interrupted)" if r["interrupted"] else "")
                      + (" (down)" if r.get("running") is False else ""),
                      r["deployed_at"] or "-"))
    widths = [max(map(len, column)) for column in zip(*table)]
    line = "  ".join("%%-%ds" % w for w in widths)
    _out("\n".join((line % row).rstrip() for row in table))     # one write for the whole table
    return 0


STATUS_DRIFT = 5      # `status` found drift, a unit down or failed, or an interrupted run


def _print_status(reports, args):
    code = 0 if all(r["healthy"] for r in reports) else STATUS_DRIFT
    if args.json:
        _out_json(Result("status", args.name, dry_run=args.dry_run, exit_code=code,
                         pods=reports).to_json())
        return code
    lines = []
    for r in reports:
        head = "%s %s" % (r["name"], r["version"] if r["version"] is not None else "-")
        if r["version"] is None:
            lines.append(head + ": not deployed (no current version)")
        else:
            lines.append("%s: %s, outcome %s, deployed %s" % (
                head, "ok" if r["healthy"] else "DRIFT", r.get("outcome") or "-",
                r.get("deployed_at") or "-"))
        table = [("UNIT", "START", "STATE", "PID", "SINCE", "ENABLED")]
        for u in r["units"]:
            table.append((u["unit"], "yes" if u["start"] else "no",
                          "%s (%s)" % (u["active"], u["sub"]) if u["active"] else "-",
                          str(u["main_pid"] or "-"), u["since"] or "-", u["enabled"] or "-"))
        if len(table) > 1:
            widths = [max(map(len, column)) for column in zip(*table)]
            fmt = "  " + "  ".join("%%-%ds" % w for w in widths)
            lines.extend((fmt % row).rstrip() for row in table)
        for d in r["drift"]:
            lines.append("  drift: " + ("%s: %s" % (d["unit"], d["problem"]) if d["unit"]
                                        else d["problem"]))
        f = r["last_failure"]
        if f:
            why = f["reason"] or {}
            lines.append("  last failed deploy: version %d at %s: %s" % (
                f["version"], f["at"] or "-", _printable(why.get("message") or "no reason kept")
                + (" (result %s)" % why["result"] if why.get("result") else "")))
    _out("\n".join(lines) if lines else "no pod is stored")
    return code


def _printable(text):
    """One line, no control characters: a message may quote the bundle."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") if c not in "\n\t" else " " for c in text)


def _fail(err, json_mode, command, args):
    signals.hold()
    from ops.errors import OpsError
    if isinstance(err, OpsError):
        code, message = err.exit_code, str(err)
    elif isinstance(err, OSError) and err.strerror:
        code, message = 1, "%s: %s" % (err.filename or "ops", err.strerror)
    else:
        if os.environ.get("OPS_DEBUG"):
            raise err
        code, message = 1, "unexpected error: %s: %s (set OPS_DEBUG=1 for details)" % (
            type(err).__name__, err)
    message = _printable(message)
    log.write(sys.stderr, "ops: error: %s\n" % message)
    if json_mode:
        r = Result.failure(command, err, message, code, dry_run=bool(args and args.dry_run))
        r.reason["what"] = _printable(str(r.reason["what"]))
        _out_json(r.to_json())
    return code


def console():
    """Entry point of the installed ``ops`` command."""
    sys.exit(main())
