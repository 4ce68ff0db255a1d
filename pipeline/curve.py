"""Who may read the stream from another machine: the publish address check and ZeroMQ CURVE.

By default the stream is published on loopback only. Any other address must be asked for with
--allow-remote (a warning says so), and should then be encrypted and authenticated with CURVE:

    python -m pipeline.curve keys/ car          # the car's key pair: keys/car.key, keys/car.key_secret
    python -m pipeline.curve keys/clients/ dash # one per subscriber; copy its .key into keys/clients/
    run_pipeline.py --publish tcp://0.0.0.0:5560 --allow-remote \\
        --curve-secret-key keys/car.key_secret --curve-clients keys/clients/
    python -m pipeline.subscribe --endpoint tcp://CAR:5560 \\
        --curve-server-key keys/car.key --curve-key keys/clients/dash.key_secret

Only subscribers whose public key is in the clients folder get anything; the others see nothing.
Key files are ZeroMQ's own certificate format (zmq.auth), so subscribers in other languages read
them with their own ZeroMQ binding. Written by hand only as far as no library does it: the address
check; the keys, the encryption and the authentication are libzmq's.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

LOOPBACK_NAMES = ("localhost",)


def remote_host(address: str) -> str | None:
    """The host of a tcp:// address that is not loopback (None for loopback, ipc://, inproc://)."""
    if not address.startswith("tcp://"):
        return None
    host = urlsplit(address).hostname or ""
    if host in LOOPBACK_NAMES:
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else host
    except ValueError:
        return host   # "*", an interface or host name: reachable from elsewhere


def check_endpoint(address: str, option: str) -> None:
    """ValueError naming `option` unless `address` is a ZeroMQ address in one of the forms the stream uses:
    tcp://HOST:PORT, ipc://PATH, inproc://NAME. Checked here because libzmq takes a port beyond 65535 or
    below 1 without a word and binds another one (99999 becomes 34463), where no subscriber will look."""
    scheme, _, rest = address.partition("://")
    usage = "tcp://HOST:PORT (e.g. tcp://127.0.0.1:5560), ipc://PATH or inproc://NAME"
    if scheme in ("ipc", "inproc") and rest:
        return
    if scheme != "tcp" or not rest:
        raise ValueError(f"{option} {address}: not a ZeroMQ address; use {usage}")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{option} {address}: needs a host and a port from 1 to 65535; use {usage}")


def check_publish_address(address: str, allow_remote: bool) -> str | None:
    """ValueError for a malformed address, or a non-loopback one without allow_remote; with it, the
    warning to print."""
    check_endpoint(address, "--publish")
    host = remote_host(address)
    if host is None:
        return None
    if not allow_remote:
        raise ValueError(f"--publish {address} can be reached from other machines ({host}); add --allow-remote "
                         f"to mean it (and --curve-secret-key/--curve-clients to let only your subscribers in)")
    return f"publishing on {address}: reachable from other machines"


def _keys(path, secret: bool) -> tuple[bytes, bytes]:
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a ZeroMQ key file ({error}); `python -m pipeline.curve` makes them") from None
    if secret and secret_key is None:
        raise ValueError(f"{path}: holds no secret key (the .key_secret file of the pair is needed)")
    return public, secret_key


def server_keys(secret_key_file, clients_dir) -> tuple[bytes, bytes]:
    """The pipeline's (public, secret) key; ValueError naming the file or folder that will not do. Checked
    before anything starts, and again by the stage that serves."""
    clients = Path(clients_dir)
    if not clients.is_dir() or not any(clients.glob("*.key")):
        raise ValueError(f"--curve-clients {clients}: no subscriber public keys (*.key) there")
    return _keys(secret_key_file, secret=True)


def serve_curve(ctx: zmq.Context, sock: zmq.Socket, secret_key_file, clients_dir) -> ThreadAuthenticator:
    """Make `sock` a CURVE server that lets in only the public keys found in `clients_dir`."""
    public, secret = server_keys(secret_key_file, clients_dir)
    clients = Path(clients_dir)
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(clients))
    sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, True
    return auth


def join_curve(sock: zmq.Socket, key_file, server_key_file) -> None:
    """Make `sock` a CURVE client with its key pair, talking to the server whose public key is given."""
    public, secret = _keys(key_file, secret=True)
    server_public, _ = _keys(server_key_file, secret=False)
    sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server_public


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.curve", description="make a CURVE key pair: "
                                "FOLDER/NAME.key (public, to share) and FOLDER/NAME.key_secret (keep it)")
    p.add_argument("folder")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="replace a key pair of that name (its subscribers or "
                   "its pipeline then need the new public key)")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    if not args.name or Path(args.name).name != args.name or args.name in (".", ".."):
        p.error(f"NAME must be a plain file name, got {args.name!r}")
    existing = [path for path in (folder / f"{args.name}.key", folder / f"{args.name}.key_secret") if path.exists()]
    if existing and not args.force:
        p.error(f"{existing[0]} exists: a new pair would lock out whoever holds its public key; --force replaces it")
    previous_umask = os.umask(0o077)   # the secret file is never readable by others, not even for a moment
    try:
        folder.mkdir(parents=True, exist_ok=True)
        public, secret = zmq.auth.create_certificates(str(folder), args.name)
    except OSError as error:
        print(f"python -m pipeline.curve: cannot write the key pair in {folder}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    finally:
        os.umask(previous_umask)
    Path(public).chmod(0o644)   # the public key is to be shared
    print(f"{public}\n{secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
