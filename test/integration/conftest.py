# Shared fixtures for the integration tests: start the real ferryd on a free loopback
# port with a temporary config, and helpers to talk to it and read what it wrote.
# Every wait has a deadline; nothing sleeps and hopes.
import json
import os
import signal
import socket
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FERRYD = os.environ.get("FERRYD", os.path.join(REPO, "build", "ferryd"))
VECTORS = os.path.join(os.path.dirname(REPO), "shared", "vectors")
DEADLINE = 15.0  # seconds any single wait may take before the test fails


def wait_for(predicate, what, timeout=DEADLINE, interval=0.01):
    """Polls predicate() until it returns a truthy value; fails the test at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_json_lines(path):
    """The JSON lines of a file written by ferryd, whole lines only: a read that races an
    append can see half a line (reads do not wait for writes on Linux)."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    data = data[:data.rfind(b"\n") + 1].decode("utf-8")
    return [json.loads(line) for line in data.splitlines() if line]


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 (the forward input binds both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            continue
        t.close()
        u.close()
        return port
    raise RuntimeError("no free port")


class Ferryd:
    """A running ferryd. `out_path` is its FileOutput (match = "**") file."""

    def __init__(self, tmp_path, input_options="", extra_config="", global_options=""):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.out_path = str(tmp_path / "out.jsonl")
        self.config_path = str(tmp_path / "ferry.toml")
        self.stderr_path = str(tmp_path / "stderr.log")
        self.stdout_path = str(tmp_path / "stdout.log")
        if "shutdown_timeout" not in global_options:
            global_options = 'shutdown_timeout = "10s"\n' + global_options
        config = f"""
[ferry]
{global_options}

[in]
type = "ForwardInput"
address = "127.0.0.1:{self.port}"
{input_options}

[file]
type = "FileOutput"
match = "**"
path = "{self.out_path}"
{extra_config}
"""
        with open(self.config_path, "w") as f:
            f.write(config)
        self._stderr = open(self.stderr_path, "wb")
        self._stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(
            [FERRYD, "-c", self.config_path, "--log-level", "debug"],
            stdout=self._stdout, stderr=self._stderr, stdin=subprocess.DEVNULL,
            env=dict(os.environ, TZ="UTC"))
        wait_for(lambda: "ferryd started" in self.stderr() or self.proc.poll() is not None,
                 "ferryd to start")
        if self.proc.poll() is not None:
            pytest.fail(f"ferryd exited at start: {self.stderr()}")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connect(self, timeout=DEADLINE):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def lines(self):
        """The FileOutput's lines so far, parsed."""
        return read_json_lines(self.out_path)

    def wait_lines(self, n, timeout=DEADLINE):
        """Waits until the output holds at least n lines; returns all lines."""
        wait_for(lambda: len(self.lines()) >= n, f"{n} output lines (have {len(self.lines())})",
                 timeout)
        return self.lines()

    def stats(self):
        """Asks for the counters (SIGUSR1) and returns the newest report as a dict."""
        before = self.stderr().count("stats {")
        self.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.stderr().count("stats {") > before, "a stats report")
        last = [l for l in self.stderr().splitlines() if "stats {" in l][-1]
        return json.loads(last[last.index("stats {") + len("stats "):])

    def counter(self, name, component="in"):
        return self.stats().get(component, {}).get(name, 0)

    def wait_counter(self, name, at_least, component="in"):
        wait_for(lambda: self.counter(name, component) >= at_least,
                 f"counter {component}.{name} >= {at_least}")

    def stop(self, sig=signal.SIGTERM):
        """Graceful stop; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("ferryd did not exit after " + str(sig))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)
        self._stderr.close()
        self._stdout.close()


@pytest.fixture
def ferryd_factory(tmp_path):
    started = []

    def make(**kwargs):
        sub = tmp_path / f"d{len(started)}"
        sub.mkdir()
        d = Ferryd(sub, **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.close()


@pytest.fixture
def ferryd(ferryd_factory):
    return ferryd_factory()


def recv_exactly(sock, n, timeout=DEADLINE):
    """Reads n bytes or fails at the deadline."""
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def wait_closed(sock, timeout=DEADLINE):
    """True once the peer closed (EOF or reset) within the deadline."""
    sock.settimeout(timeout)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        if not data:
            return True
    return False
