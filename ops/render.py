"""What ops prints on stdout: each command's result, for people or as one JSON object.

Every ``--json`` object is an :class:`~ops.result.Result` rendered by
:func:`write_json`; the human forms are the result line of a mutating command
(SPEC §3), the summary of ``check``, and the tables of ``list`` and
``status``.  Each function returns the exit status of what it printed.
Nothing here reads the host or handles an error: :mod:`ops.cli` does that.
"""

import sys

from ops import log, signals
from ops.result import Result

# json is imported when needed: `ops list` runs on every Ansible play, and
# start-up time counts there.

__all__ = ["write", "write_json", "result", "check", "versions", "status", "history", "diff", "table",
           "STATUS_DRIFT"]

STATUS_DRIFT = 5      # `status` found drift, a unit down or failed, or an interrupted run


def write(text):
    """One line (or lines) on stdout, each :func:`ops.log.printable`: what is shown
    may come from a file an administrator can edit."""
    signals.hold()                  # the result is written whole, or not at all
    if not text.replace("\n", "").isprintable():
        text = "\n".join(map(log.printable, text.split("\n")))
    log.write(sys.stdout, text + "\n")   # a reader gone (`ops list | head -1`): the rest is dropped


def write_json(r):
    """The one JSON object of ``--json``: the Result ``r``."""
    import json
    write(json.dumps(r.to_json()))


def result(r, args):
    """The last line of a mutating command, or its plan under --dry-run."""
    if args.json:
        r.dry_run = args.dry_run
        write_json(r)
        return 0
    if args.dry_run:
        for a in r.actions:
            write("  " + a.describe())
    if r.command == "cleanup":
        for line in r.lines:
            write(line)
        return 0
    word = ("would change" if args.dry_run else "changed") if r.changed else "unchanged"
    ref = "%s %s" % (r.name, r.version) if r.version is not None else r.name
    write("%s %s: %s" % (r.command, ref, word))
    return 0


def check(b, args):
    """What ``check`` found in the valid bundle ``b``."""
    if args.json:
        write_json(Result("check", b.name, b.version, dry_run=args.dry_run,
                          units=[u.name for u in b.units],
                          images=[i.source.location for i in b.images],
                          volumes=[v.name for v in b.volumes],
                          health=b.health._asdict() if b.health else None))
        return 0
    write("%s %d: valid: %s, %s, %s" % (b.name, b.version, _plural(len(b.units), "unit"),
                                        _plural(len(b.images), "image"),
                                        _plural(len(b.volumes), "volume")))
    for u in b.units:
        extra = []
        if u.start:
            extra.append("start")
        if u.instances is not None:
            extra.append("instances " + " ".join(u.instances))
        write("  unit   %s%s" % (u.name, " (%s)" % ", ".join(extra) if extra else ""))
    for i in b.images:
        how = ("id " + i.id[:19] + "...") if i.id else "no id"
        how += ", signed" if i.signature else ", unsigned"
        write("  image  %s (%s)" % (i.source.location, how))
    for v in b.volumes:
        write("  volume %s <- %s" % (v.name, v.data.location))
    if b.health:
        write("  health %s" % b.health.describe())
    return 0


def _plural(n, noun):
    return "%d %s%s" % (n, noun, "" if n == 1 else "s")


def versions(rows, args):
    """The stored versions of ``list``: one row each."""
    if args.json:
        write_json(Result("list", args.name, dry_run=args.dry_run, pods=rows))
        return 0
    if not rows:
        write("no version of pod %s is stored" % args.name if args.name else "no pod is stored")
        return 0
    deployed = {r["name"] for r in rows if r["current"]}     # a run in progress shows on that row
    cells = [("NAME", "VERSION", "CURRENT", "OUTCOME", "DEPLOYED AT")]
    append = cells.append
    for r in rows:       # 2,000 rows on a large store: the plain row first
        outcome = r["outcome"] or "-"
        if r["pinned"] or r["interrupted"] or r.get("in_progress") or r.get("running") is False:
            outcome = _marked(r, outcome, deployed)
        append((r["name"], str(r["version"]), "*" if r["current"] else "", outcome,
                r["deployed_at"] or "-"))
    lines = table(cells)
    write("\n".join(lines))     # one write for the whole table
    return 0


def _marked(r, outcome, deployed):
    """The OUTCOME cell of a row that carries more than its outcome."""
    p = r.get("in_progress")
    return (outcome + (" (pinned)" if r["pinned"] else "")
            + (" (interrupted)" if r["interrupted"] else "")
            + (" (%s)" % _progress(p) if p and (
                r["current"] if r["name"] in deployed else r["version"] == p["to"]) else "")
            + (" (down)" if r.get("running") is False else ""))


def _progress(p):
    from ops.progress import describe
    return describe(p)


def status(reports, args):
    """The report of ``status``: exit 0 when every pod is as deployed, else STATUS_DRIFT."""
    code = 0 if all(r["healthy"] for r in reports) else STATUS_DRIFT
    if args.json:
        write_json(Result("status", args.name, dry_run=args.dry_run, exit_code=code,
                          pods=reports))
        return code
    lines = []
    for r in reports:
        lines.extend(_pod_status(r))
    write("\n".join(lines) if lines else "no pod is stored")
    return code


def _pod_status(r):
    head = "%s %s" % (r["name"], r["version"] if r["version"] is not None else "-")
    if r.get("in_progress"):
        yield "%s: %s" % (head, _progress(r["in_progress"]))
    elif r["version"] is None:
        yield head + ": not deployed (no current version)"
    else:
        yield "%s: %s, outcome %s, deployed %s" % (
            head, "ok" if r["healthy"] else "DRIFT", cell(r.get("outcome") or "-"),
            cell(r.get("deployed_at") or "-"))
    if r["units"]:
        yield from table([("UNIT", "START", "STATE", "PID", "SINCE", "ENABLED")] + [
            (u["unit"], "yes" if u["start"] else "no",
             "%s (%s)" % (u["active"], u["sub"]) if u["active"] else "-",
             str(u["main_pid"] or "-"), u["since"] or "-", u["enabled"] or "-")
            for u in r["units"]], indent="  ")
    h = r.get("health")
    if h:
        yield "  health: " + ("none (%s)" % h["reason"] if not h["checked"] else
                              "ok (%s)" % h["check"] if h["ok"] else "FAILED (%s)" % h["check"])
    for d in r["drift"]:
        yield "  drift: " + cell("%s: %s" % (d["unit"], d["problem"]) if d["unit"] else d["problem"])
    f = r["last_failure"]
    if f:
        why = f["reason"] or {}
        yield "  last failed deploy: version %d at %s: %s" % (
            f["version"], cell(f["at"] or "-"), log.printable(why.get("message") or "no reason kept")
            + (" (result %s)" % why["result"] if why.get("result") else ""))


def history(events, args):
    """The events of ``history``: one row each, oldest first."""
    if args.json:
        write_json(Result("history", args.name, dry_run=args.dry_run, history=events))
        return 0
    if not events:
        write("no event of pod %s is recorded" % args.name)
        return 0

    def version(v):
        return "-" if v is None else str(v)

    def outcome(e):
        removed = e.get("removed") or []
        return str(e.get("outcome") or "-") + (" " + ",".join(map(str, removed)) if removed
                                              else "")
    rows = [("AT", "COMMAND", "FROM", "TO", "OUTCOME", "BY", "REASON")] + [
        (str(e.get("at") or "-"), str(e.get("command") or "-"), version(e.get("from")),
         version(e.get("to")), outcome(e), str(e.get("by") or "-"),
         log.printable(str(e.get("reason") or "")))
        for e in events]
    write("\n".join(table(rows)))
    return 0


def diff(found, args):
    """What ``diff`` found: the text as it is (nothing when the two are the same)."""
    name, version, differs, text, changes = found
    if args.json:
        write_json(Result("diff", name, version, dry_run=args.dry_run, differs=differs,
                          diff=text, changes=changes))
        return 0
    if text:
        signals.hold()
        log.write(sys.stdout, text)
    return 0


def table(rows, indent=""):
    """``rows`` (a heading, then the data; all strings) as lines of left-aligned
    columns two spaces apart, without trailing blanks.  Each cell is shown as
    :func:`cell` shows it: what a stored file says cannot draw on the terminal."""
    from ops.errors import MESSAGE_MAX
    widths = [max(map(len, column)) for column in zip(*rows)]
    if max(widths) > MESSAGE_MAX or not "".join(map("".join, rows)).isprintable():
        rows = [tuple(map(cell, row)) for row in rows]       # not the usual table: one C call told
        widths = [max(map(len, column)) for column in zip(*rows)]
    line = indent + "  ".join("%%-%ds" % w for w in widths)
    return [(line % row).rstrip() for row in rows]


def cell(text):
    """``text`` read from ops's files (state.json, the index, the history: they
    may have been edited) as one bounded line, control characters escaped."""
    from ops.errors import MESSAGE_MAX, clip
    return clip(text, MESSAGE_MAX, tail=False)
