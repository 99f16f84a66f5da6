"""The client with no Tribunal server: it imports without Django, the distribution declares the
`tribunal` command, and a server that cannot be reached or does not answer is exit 3, in time."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import import_module

import pytest

from tests.client.command import ROOT, TOKEN_VAR, tribunal
from tribunal_client import api_url

NO_DJANGO = """
import runpy, sys

class NoDjango:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("django", "rest_framework"):
            raise ImportError(f"{name} is not installed here")
        return None

assert not [m for m in sys.modules if m.startswith("django")]
sys.meta_path.insert(0, NoDjango())
import tribunal_client, tribunal_client.cli
from tribunal_client import Client, GateResult, TribunalError
client = Client("http://127.0.0.1:1", "token", timeout=1)
client.close()
sys.argv = ["tribunal", "gate", "--help"]
try:
    runpy.run_module("tribunal_client", run_name="__main__")
except SystemExit as exited:
    assert exited.code == 0, exited.code
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ("django", "rest_framework"))
print("loaded:", loaded)
"""


def test_it_imports_and_runs_without_django() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_DJANGO],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: tribunal gate" in done.stdout
    assert done.stdout.rstrip().endswith("loaded: []")


def test_it_declares_the_console_script_in_the_distribution() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["scripts"]["tribunal"]
    assert target == "tribunal_client.cli:main"
    module, _, function = target.partition(":")
    assert callable(getattr(import_module(module), function))
    assert "tribunal_client*" in project["tool"]["setuptools"]["packages"]["find"]["include"]


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/api/"),
        ("https://tribunal.example/api", "https://tribunal.example/api/"),
        ("https://tribunal.example/team/api/", "https://tribunal.example/team/api/"),
        ("https://tribunal.example/team/", "https://tribunal.example/team/api/"),
    ],
)
def test_it_finds_the_api_under_the_servers_address(given: str, root: str) -> None:
    assert api_url(given) == root


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def _gate_at(url: str, timeout: str) -> subprocess.CompletedProcess[str]:
    args = ["gate", "--url", url, "--token-env", TOKEN_VAR, "--audit", "1", "--timeout", timeout]
    return tribunal(*args, token="some-token")


def test_it_exits_3_naming_the_url_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    done = _gate_at(url, "2")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.startswith(f"tribunal gate: cannot reach {url}/api/audits/1/gate/: ")
    assert "refused" in done.stderr.lower()


def test_it_exits_3_when_the_server_does_not_answer_in_time(silent_server: str) -> None:
    done = _gate_at(silent_server, "1")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        f"tribunal gate: {silent_server}/api/audits/1/gate/ did not answer within 1 s "
        "(ReadTimeout)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gate", "--url", "http://x.test", "--audit", "1", "--rule", "r"], "--rule needs --judge"),
        (["gate", "--url", "http://x.test"], "the following arguments are required: --audit"),
        (["gate", "--audit", "1"], "give --url URL (or set TRIBUNAL_URL)"),
        (
            ["gate", "--url", "ftp://x.test", "--audit", "1"],
            "--url: 'ftp://x.test' is not an http(s) URL",
        ),
        (
            ["export", "--url", "http://x.test", "--audit", "1", "--output", "x.txt"],
            "--format: give one of jsonl, csv, parquet",
        ),
        (
            [*("export", "--url", "http://x.test", "--audit", "1"), "--layout", "nested"],
            "--layout: invalid choice: 'nested'",
        ),
        (["publish"], "invalid choice: 'publish'"),
    ],
)
def test_it_exits_3_on_a_usage_error(args: list[str], message: str) -> None:
    done = tribunal(*args, token="some-token")
    assert (done.returncode, done.stdout) == (3, "")
    assert message in done.stderr
