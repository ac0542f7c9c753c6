"""Kill points of a crash sweep: a traced run's events (tests/support/killer.py --trace) cut into steps.

A step ends with the event through which it shows on the host (a rename, a symlink, a removal, a systemctl
call...); the events before it prepare it: writing a file is mkdir, open, chmod, rename.  A sweep kills before
the first and before the last event of every step: the state before the step, and the state with all of it
prepared but its visible event.
"""

# The events through which a step shows on the host; the events before one
# (mkdir, open, chmod, chown, utime) prepare it.
VISIBLE = frozenset(["os.rename", "os.symlink", "os.link", "os.remove", "os.rmdir", "os.truncate",
                     "shutil.rmtree", "subprocess.Popen"])


def steps(events):
    """``events`` cut into steps, each ending with a visible event (the last may not).

    Removing a tree (a directory first renamed aside) is one step: shutil.rmtree
    of it, the removals inside it (relative to a directory descriptor, or shown
    resolved below it), and the rmdir of the directory itself."""
    out, step, tree = [], [], None
    for e in events:
        _, ev, what = e
        if tree is not None:
            inside = not what.startswith("/") or what.startswith(tree.rstrip("/") + "/")
            if inside or (ev == "os.rmdir" and what == tree):
                step.append(e)
                if ev == "os.rmdir" and what == tree:
                    out.append(step)
                    step, tree = [], None
                continue
            out.append(step)                   # the tree was not there
            step, tree = [], None
        step.append(e)
        if ev == "shutil.rmtree":
            tree = what
        elif ev in VISIBLE:
            out.append(step)
            step = []
    if step:
        out.append(step)
    return out


def kill_points(events):
    """N of the first and of the last event of every step."""
    return sorted({n for step in steps(events) for n in (step[0][0], step[-1][0])})
