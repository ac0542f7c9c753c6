"""Parse and validate a bundle (SPEC §1) into immutable records.

Validation is complete before anything else happens: every rule fails with a
:class:`~ops.errors.BundleError` whose ``where`` is the manifest's path and a
path inside it (``pod.json: ops.systemd-units[1].instances``).  Nothing here
writes anywhere or reads outside the bundle.
"""

import os
import time

from ops import strict_json
from ops.errors import BundleError
from ops.names import (MAX_NAME_LENGTH, UNIT_NAME_MAX, UNIT_SUFFIXES, has_uri_scheme, is_image_id,
                       is_instance_name, is_pod_name, is_remote, unit_name_parts,
                       unit_name_problem)
from ops.records import (SETTLED, Artifact, Bundle, HealthSpec, ImageSpec, UnitSpec,
                         VolumeSpec, stat_key)

__all__ = ["Bundle", "UnitSpec", "ImageSpec", "VolumeSpec", "HealthSpec", "Artifact", "load",
           "parse", "is_remote", "is_pod_name", "SETTLED", "MAX_MANIFEST_BYTES"]

MAX_MANIFEST_BYTES = 16 * 1024 * 1024

SAFE_KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@:-"
MAX_INSTANCES = 100000
OPS_KEYS = ("name", "version", "systemd-units", "images", "volumes", "health")
UNIT_KEYS = ("unit-file", "start", "instances")
IMAGE_KEYS = ("id", "path", "uri", "signature")
VOLUME_KEYS = ("volume", "data", "owner")
HEALTH_KEYS = ("exec", "http", "status", "timeout", "retries", "interval")


def load(bundle_arg, insecure_images=False):
    """Read and validate the bundle at ``bundle_arg`` (pod.json or its dir)."""
    path = bundle_arg
    if os.path.isdir(path):
        path = os.path.join(path, "pod.json")
    label = path
    if not os.path.lexists(path):
        raise BundleError(label, "no such file" if path == bundle_arg else
                          "no such file (a bundle directory must hold pod.json)")
    if not os.path.isfile(path):
        raise BundleError(label, "not a regular file")
    try:
        read_at = time.time()
        with open(path, "rb") as f:
            key = stat_key(os.fstat(f.fileno()))
            raw = f.read(MAX_MANIFEST_BYTES + 1)
            if stat_key(os.fstat(f.fileno())) != key:
                key = None
    except OSError as e:
        raise BundleError(label, "cannot read: %s" % (e.strerror or e))
    directory = os.path.dirname(os.path.abspath(path))
    b = parse(raw, label, directory, insecure_images=insecure_images)
    return b._replace(manifest_stat=(os.path.abspath(path), key, read_at)) if key else b


def parse(raw, label, directory, insecure_images=False):
    """Validate manifest bytes.  ``directory`` None means a stored copy:
    local artifacts are not looked up (their paths are kept as given)."""
    v = _Validator(label, directory)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(label, "file is larger than 16 MiB")
    doc = v.decode_json(raw, "")
    v.expect(isinstance(doc, dict), "", "must be a JSON object (an appc PodManifest)")
    v.expect("acKind" in doc, "acKind", "missing (must be \"PodManifest\")")
    v.expect(doc["acKind"] == "PodManifest", "acKind", "must be \"PodManifest\"")
    v.expect("acVersion" in doc, "acVersion", "missing")
    v.expect(isinstance(doc["acVersion"], str) and doc["acVersion"].strip(),
             "acVersion", "must be a non-empty string")
    ops_doc = v.ops_annotation(doc)
    name = v.name(ops_doc, "name", "ops.name")
    version = v.version(ops_doc)
    units = v.units(ops_doc.get("systemd-units", []))
    images = v.images(ops_doc.get("images", []), insecure_images)
    volumes = v.volumes(ops_doc.get("volumes", []))
    if volumes and "volumes" in doc and not isinstance(doc["volumes"], list):
        raise BundleError("%s: volumes" % label,
                          "must be a list, so that the ops volumes can be added to it")
    health = v.health(ops_doc["health"]) if "health" in ops_doc else None
    return Bundle(label, directory, bytes(raw), doc, name, version, units,
                  images, volumes, health=health)


class _Validator:
    def __init__(self, label, directory):
        self.label = label
        self.directory = directory
        self.top = os.path.realpath(directory) if directory is not None else None

    def fail(self, where, what):
        raise BundleError("%s: %s" % (self.label, where) if where else self.label, what)

    def expect(self, cond, where, what):
        if not cond:
            self.fail(where, what)

    def decode_json(self, raw, where):
        try:
            return strict_json.loads(raw)
        except strict_json.JSONProblem as e:
            if e.line is None:
                self.fail(where, e.what)
            raise BundleError("%s: %sline %d column %d" % (self.label, where + ": " if where
                                                           else "", e.line, e.column), e.what)

    def ops_annotation(self, doc):
        anns = doc.get("annotations")
        self.expect(anns is not None, "annotations",
                    "missing (it must hold the \"ops\" annotation)")
        self.expect(isinstance(anns, list), "annotations", "must be a list")
        found = None
        for i, a in enumerate(anns):
            where = "annotations[%d]" % i
            self.expect(isinstance(a, dict), where, "must be an object with name and value")
            self.expect(isinstance(a.get("name"), str), where + ".name", "must be a string")
            if a["name"] == "ops":
                self.expect(found is None, where, "a second \"ops\" annotation")
                found = i
        self.expect(found is not None, "annotations", "no annotation named \"ops\"")
        where = "annotations[%d].value" % found
        value = anns[found].get("value")
        self.expect(isinstance(value, str), where,
                    "must be a string holding a JSON object")
        ops_doc = self.decode_json(value, "ops")
        self.expect(isinstance(ops_doc, dict), "ops", "must decode to a JSON object")
        self.known_keys(ops_doc, OPS_KEYS, "ops")
        return ops_doc

    def known_keys(self, obj, keys, where):
        for k in obj:
            if k not in keys:
                self.fail("%s.%s" % (where, _key(k)),
                          "unknown key (expected one of: %s)" % ", ".join(keys))

    def name(self, obj, key, where, what="name"):
        self.expect(key in obj, where, "missing")
        value = obj[key]
        self.expect(isinstance(value, str), where, "must be a string")
        self.expect(len(value) <= MAX_NAME_LENGTH, where,
                    "longer than %d characters" % MAX_NAME_LENGTH)
        self.expect(is_pod_name(value), where,
                    "%r is not a valid %s (lower-case letters and digits, "
                    "separated by single '-' or '.')" % (value, what))
        return value

    def version(self, ops_doc):
        self.expect("version" in ops_doc, "ops.version", "missing")
        v = ops_doc["version"]
        self.expect(isinstance(v, int) and not isinstance(v, bool), "ops.version",
                    "must be a JSON integer, not %s" % _json_type(v))
        self.expect(0 <= v < 2 ** 63, "ops.version", "must be between 0 and 2^63-1")
        return v

    def list_of_objects(self, value, where):
        self.expect(isinstance(value, list), where, "must be a list")
        for i, item in enumerate(value):
            self.expect(isinstance(item, dict), "%s[%d]" % (where, i), "must be an object")
        return value

    def units(self, items):
        self.list_of_objects(items, "ops.systemd-units")
        units, seen = [], {}
        for i, u in enumerate(items):
            where = "ops.systemd-units[%d]" % i
            self.known_keys(u, UNIT_KEYS, where)
            self.expect("unit-file" in u, where + ".unit-file", "missing")
            art = self.artifact(u["unit-file"], where + ".unit-file")
            base = _basename(art.location)
            m = unit_name_parts(base)
            self.expect(m is not None and len(base) <= UNIT_NAME_MAX, where + ".unit-file",
                        "%r is not a valid unit name (letters, digits, ':_.-\\', an optional "
                        "'@' for a template, ending in .%s)" % (base, ", .".join(UNIT_SUFFIXES)))
            self.expect("@" not in m[0], where + ".unit-file",
                        "%r: a unit file is a plain unit or a template (name@.service), "
                        "not an instance" % base)
            problem = unit_name_problem(base)
            self.expect(problem is None, where + ".unit-file", problem)
            start = u.get("start", False)
            self.expect(isinstance(start, bool), where + ".start", "must be true or false")
            template = m[1] == "@"
            instances = None
            if template:
                self.expect("instances" in u, where + ".instances",
                            "missing: %s is a template and needs instances" % base)
                instances = self.instances(u["instances"], where + ".instances")
                longest = max(instances, key=len)
                self.expect(len(base) + len(longest) <= UNIT_NAME_MAX, where + ".instances",
                            "instance %r makes the unit name %s longer than systemd's %d "
                            "characters" % (longest, base.replace("@.", "@%s." % longest, 1),
                                            UNIT_NAME_MAX))
            else:
                self.expect("instances" not in u, where + ".instances",
                            "only a template unit (name@.service) takes instances")
            self.expect(base not in seen, where + ".unit-file",
                        "unit %s is already given by ops.systemd-units[%d]"
                        % (base, seen.get(base, 0)))
            seen[base] = i
            units.append(UnitSpec(base, art, start, instances))
        return tuple(units)

    def instances(self, value, where):
        if isinstance(value, int) and not isinstance(value, bool):
            self.expect(1 <= value <= MAX_INSTANCES, where,
                        "a count of instances must be between 1 and %d" % MAX_INSTANCES)
            return tuple(str(i) for i in range(value))
        self.expect(isinstance(value, list), where,
                    "must be a list of instance names or a count, not %s" % _json_type(value))
        self.expect(len(value) > 0, where, "must not be empty")
        self.expect(len(value) <= MAX_INSTANCES, where,
                    "more than %d instances" % MAX_INSTANCES)
        out, seen = [], set()
        for i, inst in enumerate(value):
            w = "%s[%d]" % (where, i)
            self.expect(isinstance(inst, (str, int)) and not isinstance(inst, bool), w,
                        "must be a string or an integer")
            s = str(inst)
            # its length: the full unit name's, checked by the caller
            self.expect(is_instance_name(s), w,
                        "%r is not a valid instance name (letters, digits, ':_.-')" % s)
            self.expect(s not in seen, w, "duplicate instance %r" % s)
            seen.add(s)
            out.append(s)
        return tuple(out)

    def images(self, items, insecure_images):
        self.list_of_objects(items, "ops.images")
        images = []
        for i, img in enumerate(items):
            where = "ops.images[%d]" % i
            self.known_keys(img, IMAGE_KEYS, where)
            image_id = None
            if "id" in img:
                image_id = img["id"]
                self.expect(isinstance(image_id, str) and is_image_id(image_id),
                            where + ".id", "must be \"sha512-\" and 32 to 128 lower-case hex digits")
            has_path, has_uri = "path" in img, "uri" in img
            self.expect(has_path or has_uri, where, "needs \"path\" or \"uri\"")
            self.expect(not (has_path and has_uri), where,
                        "has both \"path\" and \"uri\"; give exactly one")
            if has_path:
                value = img["path"]
                self.expect(isinstance(value, str) and not is_remote(value or ""),
                            where + ".path", "must be a relative path (use \"uri\" for a URI)")
                source = self.artifact(value, where + ".path")
            else:
                value = img["uri"]
                self.expect(isinstance(value, str) and value.strip() == value and value
                            and not any(c.isspace() or ord(c) < 32 for c in value),
                            where + ".uri", "must be a URI or an image name, without spaces")
                self.expect(not value.startswith("-"), where + ".uri",
                            "%r starts with '-': rkt would read it as an option" % value)
                source = (Artifact(value, uri=value) if not is_remote(value)
                          else self.artifact(value, where + ".uri"))
            sig = None
            if "signature" in img:
                sig = self.artifact(img["signature"], where + ".signature")
            self.expect(image_id or sig or insecure_images, where,
                        "neither \"id\" nor \"signature\": pin the image with its id, sign it, "
                        "or pass --insecure-images")
            images.append(ImageSpec(i, image_id, source, sig))
        return tuple(images)

    def volumes(self, items):
        self.list_of_objects(items, "ops.volumes")
        volumes, seen = [], set()
        for i, vol in enumerate(items):
            where = "ops.volumes[%d]" % i
            self.known_keys(vol, VOLUME_KEYS, where)
            name = self.name(vol, "volume", where + ".volume", "volume name")
            self.expect(name not in seen, where + ".volume", "duplicate volume %r" % name)
            seen.add(name)
            self.expect("data" in vol, where + ".data", "missing")
            owner = vol.get("owner")
            if "owner" in vol:
                from ops import owners
                problem = owners.valid(owner)
                self.expect(problem is None, where + ".owner", problem)
            volumes.append(VolumeSpec(name, self.artifact(vol["data"], where + ".data"), owner))
        return tuple(volumes)

    def health(self, h):
        where = "ops.health"
        self.expect(isinstance(h, dict), where, "must be an object")
        self.known_keys(h, HEALTH_KEYS, where)
        self.expect(("exec" in h) != ("http" in h), where,
                    "needs exactly one of \"exec\" (a command) and \"http\" (a URL)")
        argv, url = None, None
        if "exec" in h:
            argv = h["exec"]
            self.expect(isinstance(argv, list) and argv, where + ".exec",
                        "must be a non-empty list of strings (the command and its arguments)")
            total = 0
            for i, arg in enumerate(argv):
                self.expect(isinstance(arg, str) and "\0" not in arg and (arg or i),
                            "%s.exec[%d]" % (where, i),
                            "must be a %sstring without NUL" % ("" if i else "non-empty "))
                # what the kernel would refuse at run time is refused now
                try:
                    size = len(os.fsencode(arg))
                except UnicodeError:
                    self.fail("%s.exec[%d]" % (where, i), "holds a character no command line "
                              "can carry (a lone surrogate)")
                self.expect(size < 131072, "%s.exec[%d]" % (where, i),
                            "is longer than the 131071 bytes Linux allows one argument")
                total += size + 1
            self.expect(total <= 1 << 20, where + ".exec",
                        "the command line is longer than 1 MiB")
            self.expect("status" not in h, where + ".status", "only an http check takes status")
        else:
            url = h["http"]
            self.expect(isinstance(url, str) and is_remote(url), where + ".http",
                        "must be an http:// or https:// URL")
            self.expect(not any(c.isspace() or ord(c) < 32 for c in url), where + ".http",
                        "must not contain spaces or control characters")
            from urllib.parse import urlsplit
            try:
                parts = urlsplit(url)
                parts.port
            except ValueError as e:
                self.fail(where + ".http", "not a valid URL: %s" % e)
            self.expect(parts.hostname, where + ".http", "has no host")
            self.expect(url.isascii(), where + ".http",
                        "must be ASCII (percent-encode the path, use the IDNA form of the host)")
            self.expect("@" not in parts.netloc, where + ".http",
                        "must not hold a user or password (ops sends no credentials)")
            self.expect(parts.port != 0, where + ".http", "port 0 cannot be connected to")
            self.expect(_resolvable(parts), where + ".http",
                        "%r is not a host name the resolver takes (dot-separated labels of 1 to "
                        "63 characters, at most 253 in all)" % parts.hostname)
        # not 100: http.client reads a "100 Continue" as an interim answer and waits for the next
        status = self.number(h, "status", 200, 101, 599, where, integer=True)
        timeout = self.number(h, "timeout", 5, 0.001, 3600, where)
        retries = self.number(h, "retries", 0, 0, 100, where, integer=True)
        interval = self.number(h, "interval", 1, 0, 3600, where)
        return HealthSpec(tuple(argv) if argv else None, url, status, timeout, retries, interval)

    def number(self, obj, key, default, low, high, where, integer=False):
        if key not in obj:
            return default
        v = obj[key]
        kind = (int,) if integer else (int, float)
        self.expect(isinstance(v, kind) and not isinstance(v, bool), "%s.%s" % (where, key),
                    "must be %s, not %s" % ("an integer" if integer else "a number",
                                            _json_type(v)))
        self.expect(low <= v <= high, "%s.%s" % (where, key),
                    "must be between %g and %g" % (low, high))
        return v

    def artifact(self, value, where):
        """A relative path inside the bundle, or an http(s) URI."""
        self.expect(isinstance(value, str) and value != "", where,
                    "must be a non-empty string")
        self.expect(not any(ord(c) < 32 or ord(c) == 127 for c in value), where,
                    "contains a control character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(where, "contains an invalid character (an unpaired surrogate)")
        if is_remote(value):
            return Artifact(value, uri=value)
        self.expect(not has_uri_scheme(value), where,
                    "unsupported URI scheme (use http:// or https://, or a relative path)")
        self.expect(not os.path.isabs(value), where,
                    "%r is absolute; artifact paths are relative to pod.json" % value)
        self.expect(".." not in value.replace("\\", "/").split("/"), where,
                    "%r leaves the bundle directory" % value)
        if self.directory is None:
            return Artifact(value, path=None)
        full = os.path.join(self.directory, value)
        real = os.path.realpath(full)
        top = self.top          # found once for all the bundle's files
        self.expect(real != top, where, "%r is the bundle directory, not a file" % value)
        self.expect(real.startswith(top.rstrip(os.sep) + os.sep), where,
                    "%r leaves the bundle directory (through a symlink)" % value)
        self.expect(os.path.exists(real), where, "%r does not exist in the bundle" % value)
        self.expect(os.path.isfile(real), where, "%r is not a regular file" % value)
        return Artifact(value, path=real)


def _key(k):
    """A key from the bundle as it may appear in a message: plain when it is
    a plain word, else JSON-quoted (no control characters reach a terminal)."""
    return k if 1 <= len(k) <= 64 and not k.strip(SAFE_KEY_CHARS) else strict_json.quoted(k)


def _resolvable(parts):
    """Whether the host of the split URL ``parts`` can be handed to the
    resolver: an IP literal in brackets, or a name whose labels the IDNA
    codec (which socket.getaddrinfo applies) takes, within DNS's 253 characters."""
    if "[" in parts.netloc:
        return True
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return False
    return len(parts.hostname.rstrip(".")) <= 253


def _basename(location):
    if is_remote(location):
        location = location.split("?", 1)[0].split("#", 1)[0]
    return location.rstrip("/").rsplit("/", 1)[-1]


def _json_type(v):
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number with a fraction or exponent"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null"
    if isinstance(v, list):
        return "a list"
    return "an object"
