"""examples/hello as real appc pods: a real rkt 1.30 with the fly stage1 ($OPS_TEST_RKT, stage1-fly.aci beside it)
runs the web unit's ``rkt run --pod-manifest`` in a systemd container.  Without a real rkt the module fails,
saying why (OPS_TEST_RKT=0, set by hand, skips it).

The image is built here from the machine's static busybox and signed with a key made here; rkt trusts that key
for the image's name and checks the signature when ops fetches it.  The story (in this order, one container):
v1 runs a pod serving v1's volume -> v2 serves its own volume -> v3's pod exits half a second after start and is
rolled back to v2 -> redeploy 1 -> undeploy --remove leaves no image, pod or mount behind.  Then a pod that exits
shortly after start (status 0) is caught by the settle time, and only by it.
"""

import json
import os
import re
import shutil

import pytest

from tests.support import realrkt

from .conftest import copy_bundle, describe, http_get, is_active, last_line, list_pods, make_bundle, ops, wait_for

B = "/root/bundles/hello"


@pytest.fixture(scope="module")
def hello(real_rkt, container, tmp_path_factory):
    realrkt.install(container, *real_rkt)
    d, image_id = realrkt.prepare_hello(container, tmp_path_factory.mktemp("hello"), B)
    yield {"dir": d, "id": image_id}
    realrkt.gc(container)


def serves(c, version):
    r = http_get(c, "http://127.0.0.1:8080/")
    assert r.returncode == 0, describe(r)
    assert "<h1>hello, version %d</h1>" % version in r.stdout, r.stdout


def main_pid(c, unit):
    return int(c.run(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout.strip())


def running_pod(c):
    """The one running pod: (uuid, app); every other pod listed is a failure (exited pods are collected).
    Waits a little: rkt lists a pod only once the unit's ``rkt run`` has created it."""
    pods = wait_for(lambda: [p for p in realrkt.pods(c) if p[2] == "running"] and realrkt.pods(c), timeout=10)
    assert [p[2] for p in pods] == ["running"], pods
    return pods[0][:2]


def in_store(c, image_id):
    return [i for i in realrkt.image_ids(c) if image_id.startswith(i)]


def pod_root(c, pid):
    """Where the process ``pid`` of the container sees its /: the app's rootfs inside rkt's pod directory."""
    r = c.run(["readlink", "/proc/%d/root" % pid], check=True)
    return r.stdout.strip()


def test_v1_is_a_pod_run_by_rkt_from_the_signed_image(container, hello):
    c = container
    assert realrkt.image_ids(c) == [] and realrkt.pods(c) == []
    r = ops(c, "-v", "deploy", B + "/v1", check=0)
    assert last_line(r.stdout) == "deploy hello 1: changed", describe(r)
    # the image was fetched with its signature, checked by rkt against the trusted key
    fetches = [l for l in r.stderr.splitlines() if l.startswith("+ ") and " fetch " in l]
    assert len(fetches) == 1 and "--signature=" in fetches[0] and "--insecure-options" not in fetches[0], fetches
    assert len(in_store(c, hello["id"])) == 1
    # the unit's main process is the pod's app, chrooted into the image's rootfs by stage1-fly
    uuid, app = running_pod(c)
    assert app == "web"
    pid = main_pid(c, "hello-web.service")
    assert c.run(["cat", "/proc/%d/comm" % pid]).stdout.strip() == "busybox"
    assert pod_root(c, pid) == "/var/lib/rkt/pods/run/%s/stage1/rootfs/opt/stage2/web/rootfs" % uuid
    serves(c, 1)
    # PrivateMounts=yes: the pod's mounts are in the unit's own mount namespace, none in the container's
    assert realrkt.rkt_mounts(c) == []
    manifest = json.loads(c.read_file("/etc/ops/pods/hello/1/manifest.json"))
    assert manifest["apps"][0]["image"]["id"] == hello["id"]


def test_v2_serves_its_own_volume_from_a_new_pod(container, hello):
    c = container
    before, _ = running_pod(c)
    r = ops(c, "-v", "deploy", B + "/v2", check=0)
    assert last_line(r.stdout) == "deploy hello 2: changed", describe(r)
    assert not [l for l in r.stderr.splitlines() if l.startswith("+ ") and " fetch " in l], \
        describe(r, "the image is in the store already")
    uuid, _ = running_pod(c)                 # v1's pod was stopped and collected
    assert uuid != before
    serves(c, 2)
    c.write_file("/var/lib/ops/volumes/hello/2/www/extra.html", "only in version 2's volume\n")
    r = http_get(c, "http://127.0.0.1:8080/extra.html")
    assert r.stdout == "only in version 2's volume\n", describe(r)
    assert realrkt.rkt_mounts(c) == []


def test_v3_whose_pod_exits_after_start_is_rolled_back_to_2(container, hello):
    c = container
    r = ops(c, "deploy", B + "/v3", check=1, settle=None)      # caught by the default settle
    assert "hello-web.service" in r.stderr and "broken on purpose" in r.stderr, describe(r)
    assert "rolled back to 2" in r.stderr, describe(r)
    assert is_active(c, "hello-web.service") == "active"
    running_pod(c)                           # v3's exited pod was collected; v2's runs
    serves(c, 2)
    pods = list_pods(c, "hello")
    assert pods[("hello", 3)]["outcome"] == "failed" and pods[("hello", 2)]["current"] is True
    assert realrkt.rkt_mounts(c) == []


def test_redeploy_1(container, hello):
    c = container
    r = ops(c, "redeploy", "hello:1", check=0)
    assert last_line(r.stdout) == "redeploy hello 1: changed", describe(r)
    running_pod(c)
    serves(c, 1)


def test_undeploy_remove_leaves_no_image_pod_or_mount(container, hello):
    c = container
    r = ops(c, "undeploy", "hello", "--remove", check=0)
    assert last_line(r.stdout) == "undeploy hello 1: changed", describe(r)
    assert realrkt.pods(c) == []
    assert in_store(c, hello["id"]) == []
    # what stays in the store is rkt's own stage1, imported by rkt run
    names = c.run([realrkt.RKT, "image", "list", "--no-legend", "--fields=name"], check=True).stdout.split()
    assert all(n.startswith("coreos.com/rkt/stage1-fly:") for n in names), names
    assert realrkt.rkt_mounts(c) == []
    for state in ("run", "exited-garbage", "garbage", "prepared", "prepare", "embryo"):
        d = "/var/lib/rkt/pods/" + state
        assert not c.exists(d) or os.listdir(c.path(d)) == [], d
    assert c.run(["pgrep", "-x", "busybox"]).stdout == ""
    assert http_get(c, "http://127.0.0.1:8080/", wait=0).returncode != 0


@pytest.fixture(scope="module")
def quick(container, hello, tmp_path_factory):
    # the hello web unit runs whatever pod its manifest describes
    with open(os.path.join(hello["dir"], "v1", "hello-web.service")) as f:
        unit = re.sub(r"(?m)^Description=.*$", "Description=quick: a pod whose app exits with status 0 after 0.5 s",
                      f.read())
    d = make_bundle(str(tmp_path_factory.mktemp("quick") / "quick"), "quick", 1,
                    units=[("quick.service", unit, True, None)], volumes=[("www", {"index.html": b"quick\n"})],
                    extra_ops={"images": [{"id": hello["id"], "path": "images/hello-web.aci",
                                           "signature": "images/hello-web.aci.asc"}]})
    shutil.copytree(os.path.join(hello["dir"], "v1", "images"), os.path.join(d, "images"))
    with open(os.path.join(d, "pod.json")) as f:
        manifest = json.load(f)
    manifest["apps"] = [{"name": "quick", "image": {"id": hello["id"]},
                         "app": {"exec": ["/bin/busybox", "sleep", "0.5"], "user": "0", "group": "0",
                                 "mountPoints": [{"name": "www", "path": "/var/www"}]}}]
    with open(os.path.join(d, "pod.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return copy_bundle(container, d, "/root/bundles/quick")


def test_settle_catches_a_pod_that_exits_shortly_after_start(container, quick):
    c = container
    r = ops(c, "deploy", quick, check=1, settle=None)
    # caught while its ExecStopPost runs (deactivating) or after (inactive): the app exited 0, nothing "failed"
    assert re.search(r"ops: error: quick\.service: (deactivating|inactive) after start", r.stderr), describe(r)
    assert "rolled back to nothing" in r.stderr, describe(r)
    assert not c.exists("/etc/ops/current/quick")
    assert realrkt.pods(c) == []


def test_without_settle_time_the_same_pod_looks_up(container, quick):
    # systemd reports the unit active at once: only polling for a while shows the pod exiting
    c = container
    r = ops(c, "--settle", "0", "deploy", quick, check=0)
    assert last_line(r.stdout) == "deploy quick 1: changed", describe(r)
    assert wait_for(lambda: is_active(c, "quick.service") == "inactive", timeout=10)
    ops(c, "undeploy", "quick", "--remove", check=0)
    assert realrkt.pods(c) == [] and realrkt.rkt_mounts(c) == []


# A pod that writes into its "data" volume and tries to write into its "conf" volume, which pod.json declares
# read-only (its top-level volume entry); the result is left in the data volume for the test to read.
VOLUMES_SCRIPT = ("echo written > /var/data/written; "
                  "if echo x > /etc/app/denied 2>/dev/null; then echo conf-writable; else echo conf-read-only; fi"
                  " > /var/data/result; exec /bin/busybox sleep 1000")


@pytest.fixture(scope="module")
def volumes_pod(container, hello, tmp_path_factory):
    """Two versions of one pod whose app lists its mount points in the two orders: stage1-fly gives a volume
    without readOnly the setting of the last mount point, so only the volume options in manifest.json decide."""
    with open(os.path.join(hello["dir"], "v1", "hello-web.service")) as f:
        unit = re.sub(r"(?m)^Description=.*$", "Description=vols: a pod with a writable and a read-only volume",
                      f.read())
    points = [{"name": "data", "path": "/var/data"}, {"name": "conf", "path": "/etc/app", "readOnly": True}]
    paths = {}
    for version, order in ((1, points), (2, points[::-1])):
        d = make_bundle(str(tmp_path_factory.mktemp("vols") / "vols"), "vols", version,
                        units=[("vols.service", unit, True, None)],
                        volumes=[("data", {"seed": b"data\n"}), ("conf", {"app.conf": b"port=1\n"}),
                                 ("www", {"index.html": b"the image's own mount point\n"})],
                        extra_ops={"images": [{"id": hello["id"], "path": "images/hello-web.aci",
                                               "signature": "images/hello-web.aci.asc"}]})
        shutil.copytree(os.path.join(hello["dir"], "v1", "images"), os.path.join(d, "images"))
        with open(os.path.join(d, "pod.json")) as f:
            manifest = json.load(f)
        manifest["apps"] = [{"name": "vols", "image": {"id": hello["id"]},
                             "app": {"exec": ["/bin/busybox", "sh", "-c", VOLUMES_SCRIPT],
                                     "user": "0", "group": "0", "mountPoints": order}}]
        manifest["volumes"] = [{"name": "conf", "kind": "empty", "readOnly": True}]
        with open(os.path.join(d, "pod.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        paths[version] = copy_bundle(container, d, "/root/bundles/vols/%d" % version)
    yield paths
    ops(container, "undeploy", "vols", "--remove")


@pytest.mark.parametrize("version", [1, 2])
def test_volumes_are_mounted_as_declared_whatever_the_order_of_mount_points(container, volumes_pod, version):
    c = container
    r = ops(c, "deploy", volumes_pod[version], check=0, settle=None)
    assert last_line(r.stdout) == "deploy vols %d: changed" % version, describe(r)
    vdir = "/var/lib/ops/volumes/vols/%d" % version
    assert wait_for(lambda: c.exists(vdir + "/data/result") and c.read_file(vdir + "/data/result"), timeout=10), \
        c.run(["journalctl", "--no-pager", "-n", "40", "-u", "vols.service"]).stdout
    assert c.read_file(vdir + "/data/written") == "written\n"
    assert c.read_file(vdir + "/data/result") == "conf-read-only\n"
    assert not c.exists(vdir + "/conf/denied")
    vols = {v["name"]: v for v in json.loads(c.read_file("/etc/ops/pods/vols/%d/manifest.json" % version))["volumes"]}
    assert vols["data"]["readOnly"] is False and vols["conf"]["readOnly"] is True
