"""The ``ops`` program: read the command line, run the command, report (SPEC §3).

:func:`main` reads the arguments (:mod:`ops.options`), calls the command in
:mod:`ops.commands` and prints what it returns (:mod:`ops.render`).  This is
the only module that turns an exception into ``ops: error: WHERE: WHAT``, its
exit code and, under ``--json``, the failure object.  ``main(argv)`` returns
the exit status, so tests call it in-process.
"""

import gc
import os
import sys

from ops import __version__, log, options, render, signals

__all__ = ["main", "console"]


def main(argv=None):
    """Run ops; return its exit status.  ``argv`` None: the program's own
    arguments, and the signal handlers stay in place until the process exits
    (a signal after the output is written cannot turn into a second one).

    The cyclic garbage collector is off until the command starts work whose
    size ops does not bound in advance (staging and executing a plan each
    turn it back on): `list`, `status` and a deploy with nothing to do build
    what they show and exit, and the collector's passes over the modules
    they import and the rows they build were 3-5 % of their time (Mercurial
    turns it off the same way while it builds large structures).  Reference
    counting still frees everything else.  On return the collector is as the
    caller had it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        with signals.trap(restore=argv is not None):
            if argv is None:
                argv = sys.argv[1:]
            return _main(argv)
    finally:
        if collecting:
            gc.enable()


def _main(argv):
    for stream in (sys.stdout, sys.stderr):
        try:       # a non-UTF-8 locale must not turn a message into a traceback
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    json_mode = "--json" in argv
    try:
        if argv == ["--version"]:
            render.write("ops " + __version__)
            return 0
        args = options.parse(argv)
    except SystemExit as e:            # --help and --version
        return e.code or 0
    except KeyboardInterrupt as e:
        command = _command_of(argv)
        return _fail(_failed(command, "interrupted by " + signals.Interrupted.name_of(e)), json_mode, command, None)
    except Exception as e:             # UsageError
        # the command's own keys (empty) when the command is known
        return _fail(e, json_mode, _command_of(argv), None)
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


def _command_of(argv):
    """The command named in ``argv`` (skipping the values of global options),
    or "usage" when there is none."""
    valued = {f for flags, _, convert, _, _, _ in options.GLOBAL_OPTIONS if convert
              for f in flags}
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in valued:
            skip = True
        elif a == "--" or not a.startswith("-"):
            return a if a in options.COMMANDS else "usage"
    return "usage"


def _usage(where, what):
    from ops.errors import UsageError
    return UsageError(where, what)


def _failed(where, what):
    from ops.errors import Failed
    return Failed(where, what)


def _run(args):
    from ops import commands, environment
    environment.check()
    from ops.layout import Layout
    layout = Layout(args.root)
    escape = layout.escape()
    if escape and args.command != "check":
        raise _usage(escape[0], "leads outside --root %s (to %s); ops does not write outside "
                     "the tree" % (layout.root, escape[1]))
    if args.command == "list":
        return render.versions(commands.list_versions(layout, args.name, args.json), args)
    if args.command == "history":
        return render.history(commands.history(layout, args.name), args)
    if args.command == "diff":
        return render.diff(commands.diff(layout, args.ref, args.target,
                                                   args.insecure_images), args)
    if args.command == "logs":
        from ops import logs
        sv, names = logs.units(layout, args.name, args.log_version)
        if args.json:
            if args.follow:
                raise _usage("logs", "--follow and --json: one JSON object cannot follow")
            from ops.result import Result
            render.write_json(Result("logs", sv.name, sv.version, dry_run=args.dry_run,
                                     entries=logs.entries(names, args.lines)))
            return 0
        logs.run(names, args.lines, args.follow)
    from ops.host import Host
    host = Host(root=args.root, rkt=args.rkt, settle=args.settle, timeout=args.timeout,
                ca_file=args.ca_file, insecure_images=args.insecure_images,
                dry_run=args.dry_run, stop_timeout=args.stop_timeout)
    if args.command in options.MUTATING and not args.dry_run and not host.layout.offline \
            and os.geteuid() != 0:
        raise _usage(args.command, "must run as root (or give --root DIR to prepare an image "
                     "offline)")
    if args.command == "check":
        return render.check(commands.check(host, args.bundle), args)
    if args.command == "status":
        return render.status(commands.status(host, args.name, args.health), args)
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
    result.stop_timed_out = list(host.stops_timed_out)
    return render.result(result, args)


def _fail(err, json_mode, command, args):
    signals.hold()
    from ops.errors import OpsError
    if isinstance(err, OpsError):
        code, message = err.exit_code, str(err)
    elif isinstance(err, OSError) and err.strerror:
        code, message = 1, "%s: %s" % (err.filename or "ops", err.strerror)
    else:
        if _debug():
            raise err
        code, message = 1, "unexpected error: %s: %s (set OPS_DEBUG=1 for details)" % (
            type(err).__name__, err)
    from ops.errors import MESSAGE_MAX, clip
    message = clip(log.printable(message), MESSAGE_MAX, tail=False)    # one bounded line
    log.write(sys.stderr, "ops: error: %s\n" % message)
    if json_mode:
        from ops.result import Result
        r = Result.failure(command, err, message, code, dry_run=bool(args and args.dry_run))
        r.reason["what"] = clip(log.printable(str(r.reason["what"])), MESSAGE_MAX, tail=False)
        render.write_json(r)
    return code


def _debug():
    from ops import environment
    from ops.errors import UsageError
    try:
        return environment.get("OPS_DEBUG", False)
    except UsageError:        # refused before the command ran: not an error of its own
        return False


def console():
    """The program: bin/ops (what ``pip install .`` installs), ``python3 -m
    ops`` and ops.pyz run this, never a caller that goes on afterwards.

    Before the process exits, everything it built is moved out of the
    collector's reach (``gc.freeze``): the interpreter's last collection at
    exit would walk every object only to free memory the process is about to
    give back (about 1 ms after ``--version``, 2 ms after a `list` of 2,000
    versions: 6-7 % of either).  Nothing of ops waits on that collection:
    every file ops writes is closed (and synced) before its command returns,
    and the standard streams are flushed at exit as before."""
    code = main()
    gc.freeze()
    sys.exit(code)
