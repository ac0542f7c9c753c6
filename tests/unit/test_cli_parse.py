"""The quick command-line reader agrees with argparse wherever it answers."""

import pytest
from hypothesis import given, settings, strategies as st

from ops import options
from ops.errors import UsageError

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)

TOKENS = ["--root", "--root=/tmp", "/tmp", "--dry-run", "--json", "-v", "--verbose", "-q", "--quiet",
          "--lock-timeout", "--lock-timeout=0.5", "5", "-1", "nan", "inf", "1e3", "--rkt", "/bin/rkt",
          "--settle", "--settle=0", "--timeout", "--ca-file", "ca.pem", "--insecure-images",
          "check", "deploy", "redeploy", "undeploy", "list", "cleanup", "pin", "unpin", "--remove", "--keep",
          "--keep=2", "007", "hello", "hello:3", "./bundle", "--", "-", "", "-h", "--help",
          "--ro", "--json=1", "--remove=yes", "-vq", "a=b", "--root=", "--keep=-1", "x y",
          "//", "0", "1e300", "1_0", "/bin/sh", "--timeout=0", "--rkt=/tmp", "history", "logs",
          "-n", "-n=3", "--lines", "-f", "--follow", "--version", "--version=2", "--health"]


def argparse_view(argv):
    try:
        return vars(options.build_parser().parse_args(argv))
    except UsageError:
        return "usage error"
    except SystemExit:
        return "exit"


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=7))
def test_quick_reader_agrees_with_argparse(argv):
    quick = options._quick_parse(argv)
    if quick is not None:
        assert vars(quick) == argparse_view(argv)


@pytest.mark.parametrize("argv", [
    ["list"], ["--json", "list"], ["--root", "/tmp", "list", "hello"], ["--json", "deploy", "./b"],
    ["--root=/tmp", "--settle", "0", "-q", "deploy", "b/pod.json"], ["check", "b"],
    ["redeploy", "hello:1"], ["undeploy", "hello", "--remove"], ["undeploy", "--remove", "hello"],
    ["--dry-run", "cleanup", "--keep", "0", "a", "b"], ["cleanup"], ["-v", "--lock-timeout", "3",
                                                                     "--insecure-images", "check", "b"],
    ["list", "--json"], ["deploy", "--json", "./b"], ["deploy", "./b", "--root", "/tmp", "-q"],
    ["cleanup", "--dry-run", "--keep", "0", "a"], ["pin", "hello:3"], ["--json", "unpin", "hello:3"],
    ["history", "hello"], ["--json", "history", "hello"], ["logs", "hello", "-n", "20", "-f"],
    ["logs", "hello", "--version", "2"], ["status", "--health"], ["--json", "status", "--health", "a"],
])
def test_the_usual_command_lines_need_no_argparse(argv):
    quick = options._quick_parse(argv)
    assert quick is not None
    assert vars(quick) == argparse_view(argv)


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["list", "--help"], ["-v", "-q", "list"], ["--settle", "-1", "deploy", "b"],
    ["--settle=x", "deploy", "b"], ["deploy"], ["deploy", "a", "b"], ["list", "a", "b"],
    ["--ro", "/tmp", "list"], ["-v", "list", "-q"], ["cleanup", "--keep", "x"], ["--", "list"],
    ["nosuch"], ["deploy", ""], ["--root", "list"], ["cleanup", "a", "--keep", "2", "b"],
])
def test_everything_else_is_left_to_argparse(argv):
    assert options._quick_parse(argv) is None


@pytest.mark.parametrize("before, after", [
    (["--json", "list"], ["list", "--json"]),
    (["--root", "/tmp", "--dry-run", "deploy", "./b"], ["deploy", "./b", "--root", "/tmp", "--dry-run"]),
    (["--settle=5", "-v", "redeploy", "hello:1"], ["redeploy", "--settle=5", "hello:1", "-v"]),
    (["--json", "cleanup", "--keep", "0"], ["cleanup", "--keep", "0", "--json"]),
])
def test_global_options_after_the_command_mean_the_same(before, after):
    assert vars(options._quick_parse(after)) == vars(options._quick_parse(before))
    assert argparse_view(after) == argparse_view(before) == vars(options._quick_parse(before))


def test_an_option_after_the_command_overrides_the_same_before_it():
    assert argparse_view(["--root", "/tmp", "list", "--root", "/var"])["root"] == "/var"
    assert options._quick_parse(["--root", "/tmp", "list", "--root", "/var"]).root == "/var"


def test_verbose_before_and_quiet_after_is_a_usage_error():
    assert argparse_view(["-v", "list", "-q"]) == "usage error"
