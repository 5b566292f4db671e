"""Wildcard binds (issue 11, item 5): a worker on 0.0.0.0 or :: answers its own addresses and names and the
--allow-host list, prints a URL a client can use, and still refuses foreign Host headers (DNS rebinding).

The live test runs in a private network namespace (`unshare -rn`), where the machine's extra addresses are
ours to make up and nothing outside can reach the worker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_core.worker.hosts import HostPolicy, split_host
from tests import worker_fixtures as wf
from tests.worker_fixtures import worker_env

checkpoint, shared = wf.checkpoint, wf.shared


def test_bound_address_policy() -> None:
    policy = HostPolicy("127.0.0.1", 8000)
    assert policy.allows("127.0.0.1:8000") and policy.allows("localhost:8000") and policy.allows("LOCALHOST:8000")
    assert not policy.allows("127.0.0.1:8001") and not policy.allows("127.0.0.1") and not policy.allows("evil:8000")
    assert policy.ready_url() == "http://127.0.0.1:8000"
    v6 = HostPolicy("::1", 9)
    assert v6.allows("[::1]:9") and v6.allows("localhost:9") and not v6.allows("::1:9")


def test_wildcard_policy() -> None:
    policy = HostPolicy("0.0.0.0", 8000, ["studio-gpu.example", "203.0.113.7"])
    # The address the connection arrived on, in whatever form a dual-stack socket reports it.
    assert policy.allows("10.1.2.3:8000", "10.1.2.3") and policy.allows("10.1.2.3:8000", "::ffff:10.1.2.3")
    assert policy.allows("[fd00::5]:8000", "fd00::5") and policy.allows("localhost:8000", "127.0.0.1")
    assert not policy.allows("10.1.2.4:8000", "10.1.2.3")  # another address than the one it came in on
    assert not policy.allows("localhost:8000", "10.1.2.3")
    assert policy.allows("studio-gpu.example:8000", "10.1.2.3") and policy.allows("203.0.113.7:8000", "10.1.2.3")
    assert not policy.allows("attacker.example:8000", "10.1.2.3")  # a rebound name
    assert not policy.allows("0.0.0.0:8000", "10.1.2.3") and not policy.allows("10.1.2.3:8001", "10.1.2.3")
    with pytest.raises(ValueError, match="--allow-host"):
        HostPolicy("0.0.0.0", 1, ["[::1"])
    assert split_host("[::1]:80") == ("::1", 80) and split_host("a:b") is None


NAMESPACE_SCRIPT = r"""
import http.client, json, os, sys, tempfile
sys.path.insert(0, os.environ["REPO"])
from jambatalk_blender.core.local_worker import LocalWorker
from jambatalk_blender.core.worker_client import WorkerClient

checkpoint, bind = sys.argv[1], sys.argv[2]
with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
    f.write("studio-token-0123456789\n")
worker = LocalWorker.start(sys.executable, [checkpoint], device="cpu", env=dict(os.environ), startup_timeout_s=120,
                           extra_args=["--host", bind, "--token-file", f.name, "--allow-host", "studio-gpu.example"])
port = worker.ready["port"]
out = {"url": worker.ready["url"], "result_dir": "result_dir" in worker.ready, "replies": {}}

def status(connect, host):
    connection = http.client.HTTPConnection(connect, port, timeout=20)
    try:
        connection.request("GET", "/health", headers={"Host": host, "Authorization": "Bearer studio-token-0123456789"})
        return connection.getresponse().status
    finally:
        connection.close()

cases = [("127.0.0.1", "127.0.0.1"), ("127.0.0.1", "localhost"), ("10.77.0.1", "10.77.0.1"),
         ("10.77.0.1", "studio-gpu.example"), ("10.77.0.1", "attacker.example"), ("127.0.0.1", "10.77.0.1"),
         ("10.77.0.1", "0.0.0.0")]
if bind == "::":
    cases += [("fd77::1", "[fd77::1]"), ("::1", "[::1]"), ("fd77::1", "evil.example")]
for connect, host in cases:
    out["replies"][f"{connect} as {host}"] = status(connect, f"{host}:{port}")
out["client_ok"] = WorkerClient.connect(worker.ready["url"], "studio-token-0123456789").health()["protocol"] == 1
worker.stop()
os.unlink(f.name)
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("unshare") is None
                    or shutil.which("ip") is None, reason="needs unshare and ip (Linux)")
@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_wildcard_bind_in_a_private_network_namespace(checkpoint: Path, bind: str) -> None:
    setup = ("ip link set lo up && ip addr add 10.77.0.1/32 dev lo && ip -6 addr add fd77::1/128 dev lo nodad && "
             f'exec "{sys.executable}" -c "$SCRIPT" "{checkpoint}" "{bind}"')
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private network namespaces here: {probe.stderr.decode().strip()}")
    env = {**worker_env(), "SCRIPT": NAMESPACE_SCRIPT, "REPO": str(wf.REPO)}
    done = subprocess.run(["unshare", "-rn", "sh", "-c", setup], capture_output=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    replies = out["replies"]
    assert replies["127.0.0.1 as 127.0.0.1"] == 200 and replies["127.0.0.1 as localhost"] == 200
    assert replies["10.77.0.1 as 10.77.0.1"] == 200  # the machine's own address
    assert replies["10.77.0.1 as studio-gpu.example"] == 200  # --allow-host
    assert replies["10.77.0.1 as attacker.example"] == 421  # DNS rebinding: still refused
    assert replies["127.0.0.1 as 10.77.0.1"] == 421 and replies["10.77.0.1 as 0.0.0.0"] == 421
    if bind == "::":
        assert replies["fd77::1 as [fd77::1]"] == 200 and replies["::1 as [::1]"] == 200
        assert replies["fd77::1 as evil.example"] == 421
    # No default route in the namespace: the ready line's URL is the loopback address, which works.
    assert out["url"].startswith("http://127.0.0.1:") and out["client_ok"]
    assert not out["result_dir"]  # results as files only for loopback binds
