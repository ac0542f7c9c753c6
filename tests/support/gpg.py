"""Real gpg keys and detached signatures for tests.

Every call names its GNUPGHOME explicitly (``--homedir``), so the caller's
keyring is never touched.  Generating and signing starts a gpg-agent for
that home; call ``stop_agent(homedir)`` when done (a module fixture's
teardown) so no process is left behind.
"""

import os
import re
import subprocess

__all__ = ["make_key", "fingerprint", "sign", "stop_agent", "install_trusted_key",
           "GpgError"]

TIMEOUT = 120


class GpgError(RuntimeError):
    pass


def _env():
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    env.pop("GNUPGHOME", None)
    return env


def _gpg(homedir, *args, input=None):
    argv = ["gpg", "--homedir", str(homedir), "--batch", "--no-tty",
            "--pinentry-mode", "loopback", "--passphrase", ""] + list(args)
    p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=_env(), timeout=TIMEOUT)
    if p.returncode != 0:
        raise GpgError("%s exited %d: %s" % (" ".join(argv), p.returncode,
                                             p.stderr.decode("utf-8", "replace").strip()))
    return p.stdout.decode("utf-8", "replace")


def _prepare(homedir):
    os.makedirs(str(homedir), mode=0o700, exist_ok=True)
    os.chmod(str(homedir), 0o700)


def make_key(homedir, uid="ops test <ops@example.com>", algo="rsa2048"):
    """Create a signing key without passphrase in ``homedir``; return its
    ASCII-armoured public key."""
    _prepare(homedir)
    _gpg(homedir, "--quick-gen-key", uid, algo, "sign", "never")
    return _gpg(homedir, "--armor", "--export", fingerprint(homedir, uid))


def fingerprint(homedir, uid=None):
    """The primary key's fingerprint (40 lower-case hex digits), as rkt names
    trusted key files; the only key, or the one whose user ID contains ``uid``."""
    out = _gpg(homedir, "--with-colons", "--fingerprint", "--list-keys")
    found = []
    current = None
    for line in out.splitlines():
        f = line.split(":")
        if f[0] == "pub":
            current = {"fpr": None, "uids": []}
            found.append(current)
        elif f[0] == "fpr" and current is not None and current["fpr"] is None:
            current["fpr"] = f[9].lower()
        elif f[0] == "uid" and current is not None:
            current["uids"].append(f[9])
    if uid is not None:
        found = [k for k in found if any(uid in u for u in k["uids"])]
    fprs = sorted({k["fpr"] for k in found if k["fpr"]})
    if len(fprs) != 1:
        raise GpgError("expected one key%s in %s, found %d"
                       % (" for %r" % uid if uid else "", homedir, len(fprs)))
    if not re.match(r"^[0-9a-f]{40}$", fprs[0]):
        raise GpgError("unexpected fingerprint %r" % fprs[0])
    return fprs[0]


def sign(homedir, file, uid=None):
    """Write the ASCII-armoured detached signature ``file + '.asc'``; return its path."""
    out = str(file) + ".asc"
    args = ["--yes", "--armor", "--detach-sign", "--output", out]
    if uid is not None:
        args += ["--local-user", fingerprint(homedir, uid)]
    _gpg(homedir, *(args + [str(file)]))
    return out


def stop_agent(homedir):
    """Stop the gpg-agent that key generation or signing started for ``homedir``."""
    subprocess.run(["gpgconf", "--homedir", str(homedir), "--kill", "gpg-agent"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                   timeout=TIMEOUT)


def install_trusted_key(config_dir, armored, fpr, prefix=None):
    """Put a key where ``rkt trust`` would: CONFIG/trustedkeys/prefix.d/PREFIX/FPR,
    or CONFIG/trustedkeys/root.d/FPR without a prefix.  Returns the path."""
    if prefix:
        d = os.path.join(str(config_dir), "trustedkeys", "prefix.d", prefix)
    else:
        d = os.path.join(str(config_dir), "trustedkeys", "root.d")
    os.makedirs(d, mode=0o755, exist_ok=True)
    path = os.path.join(d, fpr)
    with open(path, "w") as f:
        f.write(armored)
    os.chmod(path, 0o644)
    return path
