"""Real Redis servers for the tests: a standalone ``redis-server`` and a 3-master Redis Cluster,
each on free loopback ports with its own temporary directory, stopped by whoever started them.

``make system`` installs ``redis-server`` and ``redis-cli`` (Debian's package) when missing.
Nothing here imports redis-py: readiness is checked with a raw RESP ``PING`` and ``CLUSTER
INFO`` over a socket, so the helpers work before and apart from the client under test.

>>> # with RedisServer(tmp_dir, appendfsync="always") as srv: srv.url -> 'redis://127.0.0.1:PORT'
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

__all__ = ["RedisServer", "RedisCluster", "free_port", "have_redis", "resp"]

Fsync = Literal["always", "everysec", "no"]
_START_TIMEOUT = 20.0


def have_redis() -> bool:
    """Whether ``redis-server`` and ``redis-cli`` are on the PATH."""
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, bus: bool = False, rng: random.Random | None = None) -> int:
    """A loopback port nobody listens on (and, with ``bus``, its Cluster bus port + 10000 too).
    Random in 20000-29999 rather than the kernel's pick, so the bus port stays below 65536."""
    r = rng or random.Random()
    for _ in range(500):
        p = r.randrange(20000, 30000)
        if _bindable(p) and (not bus or _bindable(p + 10000)):
            return p
    raise RuntimeError("no free loopback port in 20000-29999")


def resp(port: int, *args: str, timeout: float = 1.0, tls_ca: Path | None = None) -> bytes:
    """Send one command in RESP to 127.0.0.1:``port`` (over TLS when ``tls_ca`` names the CA
    certificate) and return the raw reply (one read)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        # wrapping hands the descriptor to the TLS socket: closing that one closes both
        s = ssl.create_default_context(cafile=str(tls_ca)).wrap_socket(raw, server_hostname="127.0.0.1") \
            if tls_ca is not None else raw
    except BaseException:
        raw.close()
        raise
    with s:
        s.sendall(payload)
        chunks = []
        while True:
            data = s.recv(65536)
            chunks.append(data)
            if not data or data.endswith(b"\r\n"):
                break
        return b"".join(chunks)


class RedisServer:
    """One ``redis-server`` on 127.0.0.1 with its data in ``directory``.

    Parameters
    ----------
    directory
        Working directory of the server (AOF files, cluster config); created when missing.
    appendfsync
        AOF fsync policy: ``"always"`` (every acknowledged write is on disk), ``"everysec"``
        (up to about a second of acknowledged writes can be lost in a power cut; a killed
        process loses nothing the kernel got) or ``"no"``. RDB snapshots are off (``--save ""``).
    port
        The port (default: a free one, chosen again if the server cannot bind it).
    cluster
        Start as a Cluster node (``--cluster-enabled yes``).
    tls
        Serve TLS only, with a CA and a server certificate for 127.0.0.1 made here with
        ``openssl`` (``tls_ca`` is the CA file a client trusts).
    extra
        More ``redis-server`` arguments (such as ``["--requirepass", "pw"]``).
    """

    def __init__(self, directory: str | Path, *, appendfsync: Fsync = "always", port: int | None = None,
                 cluster: bool = False, tls: bool = False, extra: Sequence[str] = ()) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.appendfsync = appendfsync
        self.cluster = cluster
        self.extra = list(extra)
        self.tls_ca = _make_certs(self.directory) if tls else None
        self.port = port if port is not None else free_port(bus=cluster)
        self._fixed_port = port is not None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls_ca else 'redis'}://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        if self.tls_ca is not None:
            d = self.directory
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(d / "server.crt"),
                     "--tls-key-file", str(d / "server.key"), "--tls-ca-cert-file", str(self.tls_ca),
                     "--tls-auth-clients", "no"]
        else:
            ports = ["--port", str(self.port)]
        argv = [
            "redis-server", *ports, "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
            "--protected-mode", "no", "--daemonize", "no", "--logfile", "redis.log", *self.extra,
        ]
        if self.cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000"]
        return argv

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING (loading its AOF first)."""
        for _attempt in range(5):
            self.proc = subprocess.Popen(self._argv(), cwd=self.directory, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            if self._wait_ready():
                return self
            self.stop()
            if self._fixed_port:
                break
            self.port = free_port(bus=self.cluster)  # lost the port to someone else: another one
        log = (self.directory / "redis.log")
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                reply = resp(self.port, "PING", tls_ca=self.tls_ca)
                if reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH"):  # up (a password is set)
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        """Stop the process at once (SIGKILL, as a crash): no shutdown save, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); harmless when stopped."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def restart(self, *, crash: bool = True) -> None:
        """Stop (by SIGKILL when ``crash``) and start again on the same port and directory."""
        if crash:
            self.kill()
        else:
            self.stop()
        self._fixed_port = True
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _make_certs(d: Path) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 in ``d``; returns the CA file."""
    def run(*argv: str) -> None:
        subprocess.run(["openssl", *argv], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=decisioner-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return d / "ca.crt"


class RedisCluster:
    """A Redis Cluster of three masters (no replicas) on loopback, each node a
    :class:`RedisServer` in its own subdirectory of ``directory``."""

    def __init__(self, directory: str | Path, *, appendfsync: Fsync = "always", masters: int = 3) -> None:
        self.directory = Path(directory)
        self.nodes = [RedisServer(self.directory / f"node{i}", appendfsync=appendfsync, cluster=True)
                      for i in range(masters)]

    @property
    def url(self) -> str:
        """The URL of the first node (a Cluster client discovers the others)."""
        return self.nodes[0].url

    def start(self) -> RedisCluster:
        """Start the nodes, join them (``redis-cli --cluster create``) and wait until every node
        reports ``cluster_state:ok``; stops what it started when that fails."""
        try:
            for n in self.nodes:
                n.start()
            addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
            out = subprocess.run(
                ["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, timeout=60, check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout[-2000:]!r} {out.stderr[-2000:]!r}")
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every node answers ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(b"cluster_state:ok" in resp(n.port, "CLUSTER", "INFO") for n in self.nodes):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
