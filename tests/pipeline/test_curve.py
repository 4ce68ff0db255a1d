"""Remote subscribers: publishing beyond loopback must be asked for; with CURVE only the subscribers
whose public keys the pipeline holds read the stream (real sockets, libzmq's own CURVE and ZAP)."""
import re
import subprocess
import sys
import time

import pytest
import zmq

from pipeline.curve import check_publish_address
from pipeline.runner import Publisher
from pipeline.subscribe import receive, subscribe
from pipeline_helpers import REPO, env, free_endpoint


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:5560", "tcp://localhost:5560", "tcp://[::1]:5560",
                                     "ipc:///tmp/x.sock", "inproc://x"])
def test_loopback_and_local_addresses_need_nothing(address):
    assert check_publish_address(address, allow_remote=False) is None


@pytest.mark.parametrize("address", ["tcp://*:5560", "tcp://0.0.0.0:5560", "tcp://192.168.1.20:5560",
                                     "tcp://eth0:5560"])
def test_other_addresses_need_allow_remote_and_get_a_warning(address):
    with pytest.raises(ValueError, match="add --allow-remote"):
        check_publish_address(address, allow_remote=False)
    assert "reachable from other machines" in check_publish_address(address, allow_remote=True)


@pytest.mark.parametrize("address, expected", [
    ("nonsense", "not a ZeroMQ address"), ("udp://127.0.0.1:5560", "not a ZeroMQ address"), ("ipc://", "not a ZeroMQ"),
    ("tcp://127.0.0.1", "needs a host and a port"), ("tcp://:5560", "needs a host and a port"),
    ("tcp://127.0.0.1:99999", "port from 1 to 65535"), ("tcp://127.0.0.1:0", "port from 1 to 65535"),
    ("tcp://127.0.0.1:-1", "port from 1 to 65535"), ("tcp://127.0.0.1:*", "port from 1 to 65535"),
])
def test_a_malformed_address_is_refused_naming_it_whatever_allow_remote_says(address, expected):
    # libzmq itself would bind 99999 as 34463 and -1 as 65535, where no subscriber looks
    for allow_remote in (False, True):
        with pytest.raises(ValueError, match=f"^--publish {re.escape(address)}: .*{expected}"):
            check_publish_address(address, allow_remote=allow_remote)


def test_a_subscriber_refuses_a_malformed_endpoint_in_one_line():
    run = subprocess.run([sys.executable, "-m", "pipeline.subscribe", "--endpoint", "tcp://127.0.0.1:99999",
                          "--timeout", "1"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.splitlines() == [
        "exprada subscribe: --endpoint tcp://127.0.0.1:99999: needs a host and a port from 1 to 65535; use "
        "tcp://HOST:PORT (e.g. tcp://127.0.0.1:5560), ipc://PATH or inproc://NAME"]


def make_keys(folder, name):
    run = subprocess.run([sys.executable, "-m", "pipeline.curve", str(folder), name], cwd=REPO, env=env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    public, secret = run.stdout.split()
    assert (folder / f"{name}.key_secret").stat().st_mode & 0o077 == 0   # the secret is the owner's alone
    return public, secret


def test_a_key_pair_is_never_replaced_unasked_and_a_bad_folder_or_name_is_one_line(tmp_path, capsys):
    from pipeline.curve import main

    make_keys(tmp_path, "car")
    first = (tmp_path / "car.key").read_text()
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "car"])
    assert stop.value.code == 2 and f"{tmp_path / 'car.key'} exists" in capsys.readouterr().err
    assert (tmp_path / "car.key").read_text() == first
    assert main([str(tmp_path), "car", "--force"]) == 0
    assert (tmp_path / "car.key").read_text() != first
    assert (tmp_path / "car.key_secret").stat().st_mode & 0o077 == 0
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "../elsewhere"])
    assert stop.value.code == 2 and "NAME must be a plain file name" in capsys.readouterr().err
    assert main(["/proc/no-such-folder", "car"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "python -m pipeline.curve: cannot write the key pair in /proc/no-such-folder: No such file or directory"]


def test_only_subscribers_with_a_known_key_read_the_stream(tmp_path):
    server_public, server_secret = make_keys(tmp_path / "car", "car")
    _, dash_secret = make_keys(tmp_path / "clients", "dash")          # its .key stays in clients/: known
    _, stranger_secret = make_keys(tmp_path / "strangers", "stranger")
    address = free_endpoint()
    ctx = zmq.Context()
    publisher = Publisher(ctx, address, server_secret, str(tmp_path / "clients"))
    known = subscribe(address, ctx=ctx, curve_key=dash_secret, curve_server_key=server_public)
    stranger = subscribe(address, ctx=ctx, curve_key=stranger_secret, curve_server_key=server_public)
    plain = subscribe(address, ctx=ctx)
    try:
        time.sleep(0.5)                                  # handshakes and subscriptions
        for i in range(20):
            publisher.publish(b"status", b'{"schema":"exprada.status/1","t_ns":%d,"mode":"live","source":{},'
                                         b'"stages":{},"error":null}' % i)
            time.sleep(0.01)
        got = receive(known, 2000)
        assert got is not None and got[0] == "status"
        assert receive(stranger, 500) is None and receive(plain, 500) is None
    finally:
        for sock in (known, stranger, plain):
            sock.close(0)
        publisher.close()
        ctx.term()


def test_a_bad_key_file_is_one_clear_line(tmp_path):
    (tmp_path / "clients").mkdir()
    (tmp_path / "clients" / "x.key").write_text("not a key")
    (tmp_path / "junk.key_secret").write_text("junk")
    ctx = zmq.Context()
    with pytest.raises(ValueError, match="junk.key_secret: not a ZeroMQ key file"):
        Publisher(ctx, free_endpoint(), str(tmp_path / "junk.key_secret"), str(tmp_path / "clients"))
    with pytest.raises(ValueError, match="no subscriber public keys"):
        Publisher(ctx, free_endpoint(), str(tmp_path / "junk.key_secret"), str(tmp_path / "empty"))
    ctx.term()


def test_run_pipeline_refuses_a_remote_address_unless_asked_and_then_serves_known_keys(models, drive_clip, tmp_path):
    from pipeline_helpers import pipeline_command

    refused = subprocess.run(pipeline_command(drive_clip, models, "--publish", "tcp://0.0.0.0:5597", "--fast"),
                             cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "add --allow-remote" in refused.stderr.strip().splitlines()[-1]
    server_public, server_secret = make_keys(tmp_path / "car", "car")
    _, dash_secret = make_keys(tmp_path / "clients", "dash")
    # the public key where the secret one belongs, or no subscriber keys: refused before any stage starts
    for keys, expected in (((server_public, tmp_path / "clients"), "holds no secret key"),
                           ((server_secret, tmp_path / "car" / "none"), "no subscriber public keys")):
        refused = subprocess.run(pipeline_command(drive_clip, models, "--publish", "tcp://0.0.0.0:5597",
                                                  "--allow-remote", "--curve-secret-key", keys[0], "--curve-clients",
                                                  keys[1], "--fast"),
                                 cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
        last = refused.stderr.strip().splitlines()[-1]
        assert refused.returncode == 2 and last.startswith("run_pipeline: ") and expected in last, refused.stderr
    port = free_endpoint().rsplit(":", 1)[1]
    run = subprocess.Popen(pipeline_command(drive_clip, models, "--publish", f"tcp://0.0.0.0:{port}", "--allow-remote",
                                            "--curve-secret-key", server_secret, "--curve-clients", tmp_path / "clients"),
                           cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    known = subscribe(f"tcp://127.0.0.1:{port}", ("emotion",), ctx=ctx, curve_key=dash_secret,
                      curve_server_key=server_public)
    try:
        got = receive(known, 60_000)
        assert got is not None and got[0] == "emotion"
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        known.close(0)
        ctx.term()
    assert run.returncode == 0, err
    assert "warning: publishing on tcp://0.0.0.0" in err and "unencrypted" not in err
