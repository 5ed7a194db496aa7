"""Starting a gpumigd for tests: a temp socket, a small config, fault
injection on, and teardown (SIGTERM, then SIGKILL). Used by the pytest
plugin (gpumig.testing)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from typing import Optional

from gpumig.client import Client
from gpumig.errors import GpumigError

DEFAULT_REGIONS = (
    'regions { name: "lmem" kind: LMEM size: "64MiB" aperture: "16MiB" }\n'
    'regions { name: "smem" kind: SMEM size: "64MiB" }\n')


class DaemonProcess:
    """One gpumigd child process with its own socket, config and log."""

    def __init__(self, binary: str, workdir: Optional[str] = None,
                 regions: str = DEFAULT_REGIONS, fault_injection: bool = True,
                 tls_dir: Optional[str] = None, tls_admins: tuple = ()):
        # tls_dir: server.pem/server.key/ca.pem (tests/testing/
        # make_test_certs.sh) for a mutual-TLS listener on 127.0.0.1:0;
        # its port is in `tcp_port` once started.
        self.tls_dir = tls_dir
        self.tcp_port: Optional[int] = None
        self.binary = binary
        # sun_path is 108 bytes: keep the socket directory short.
        self.workdir = workdir or tempfile.mkdtemp(prefix="gpumigd-")
        self.socket = os.path.join(self.workdir, "gpumig.sock")
        self.config = os.path.join(self.workdir, "gpumigd.textproto")
        self.log_path = os.path.join(self.workdir, "gpumigd.log")
        listeners = ""
        if tls_dir:
            t = tls_dir
            admins = "".join(f' admin_subjects: "{a}"' for a in tls_admins)
            listeners = (f'listeners {{ tcp {{ address: "127.0.0.1:0" '
                         f'tls_cert: "{t}/server.pem" tls_key: "{t}/server.key" '
                         f'tls_client_ca: "{t}/ca.pem"{admins} }} }}\n')
        with open(self.config, "w") as f:
            f.write('backend: "sim"\nshutdown_grace_ms: 200\n' + regions +
                    listeners)
        self.fault_injection = fault_injection
        self.proc: Optional[subprocess.Popen] = None

    def start(self, ready_timeout_s: float = 15.0) -> "DaemonProcess":
        args = [self.binary, f"--config={self.config}",
                f"--socket={self.socket}", "--metrics_listen=none"]
        if self.fault_injection:
            args.append("--enable_fault_injection")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        end = time.monotonic() + ready_timeout_s
        # Wait for the socket first: a channel that failed to connect backs
        # off for a second or more before it tries again.
        while not os.path.exists(self.socket) and time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        with Client(socket=self.socket, timeout=1.0) as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"gpumigd exited {self.proc.returncode} during "
                        f"start-up; log:\n{self.log()}")
                try:
                    c.daemon.ping()
                    if self.tls_dir:
                        m = re.search(r"event=listening tcp=127\.0\.0\.1:(\d+)",
                                      self.log())
                        if not m:
                            raise RuntimeError("no TCP listening line in log")
                        self.tcp_port = int(m.group(1))
                    return self
                except GpumigError:
                    if time.monotonic() > end:
                        raise RuntimeError("gpumigd did not answer ping")
                    time.sleep(0.05)

    def client(self, timeout: float = 30.0) -> Client:
        return Client(socket=self.socket, timeout=timeout)

    def log(self) -> str:
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
