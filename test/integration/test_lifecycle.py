# Process lifecycle: graceful stop on SIGTERM/SIGINT (nothing lost, every ack written,
# listener closed, shutdown_timeout), SIGUSR1 (stats report + FileOutput reopen), SIGHUP,
# and --pid-file.
import json
import os
import select
import signal
import socket
import struct
import subprocess
import time

import msgpack
import pytest

from conftest import DEADLINE, FERRYD, Ferryd, free_port, read_json_lines, wait_for

SEC = 1700000000


def event_time(sec=SEC, nsec=0):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def message(tag, record, chunk=None):
    req = [tag, event_time(), record]
    if chunk is not None:
        req.append({"chunk": chunk})
    return msgpack.packb(req)


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, data):
        self.sock.sendall(data)

    def read(self, n=None, timeout=DEADLINE):
        """Replies until n of them (n=None: until EOF) or the deadline; returns (replies, eof)."""
        out = []
        end = time.monotonic() + timeout
        while True:
            for obj in self.unpacker:
                out.append(obj)
            left = end - time.monotonic()
            if (n is not None and len(out) >= n) or left <= 0:
                return out, False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not data:
                return out, True
            self.unpacker.feed(data)

    def acks(self, n):
        return self.read(n)[0]

    def close(self):
        self.sock.close()


class CustomFerryd(Ferryd):
    """A ferryd with a config of our own. The fixture's [ferry] table already sets
    shutdown_timeout, so its global_options cannot change it (TOML forbids the key twice)."""

    def __init__(self, tmp_path, shutdown_timeout="10s", extra_config="", args=()):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.out_path = str(tmp_path / "out.jsonl")
        self.config_path = str(tmp_path / "ferry.toml")
        self.stderr_path = str(tmp_path / "stderr.log")
        self.stdout_path = str(tmp_path / "stdout.log")
        with open(self.config_path, "w") as f:
            f.write(f"""
[ferry]
shutdown_timeout = "{shutdown_timeout}"

[in]
type = "ForwardInput"
address = "127.0.0.1:{self.port}"

[file]
type = "FileOutput"
match = "**"
path = "{self.out_path}"
{extra_config}
""")
        self._stderr = open(self.stderr_path, "wb")
        self._stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(
            [FERRYD, "-c", self.config_path, "--log-level", "debug", *args],
            stdout=self._stdout, stderr=self._stderr, stdin=subprocess.DEVNULL,
            env=dict(os.environ, TZ="UTC"))
        wait_for(lambda: "ferryd started" in self.stderr() or self.proc.poll() is not None,
                 "ferryd to start")
        if self.proc.poll() is not None:
            pytest.fail(f"ferryd exited at start: {self.stderr()}")


@pytest.fixture
def custom_ferryd(tmp_path):
    started = []

    def make(**kwargs):
        sub = tmp_path / f"c{len(started)}"
        sub.mkdir()
        d = CustomFerryd(sub, **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.close()


class BlockedFifo:
    """A FIFO with a reader that reads nothing until told: an output writing to it blocks
    once the pipe is full, so ferryd's flush on stop cannot finish."""

    def __init__(self, path):
        self.path = str(path)
        os.mkfifo(self.path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = b""

    def config(self):
        return f'\n[slow]\ntype = "FileOutput"\nmatch = "**"\npath = "{self.path}"\n'

    def drain_until_exit(self, proc):
        """Reads everything until proc exits and the write end is closed."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk and proc.poll() is not None:
                    return
                self.data += chunk
            elif proc.poll() is not None:
                # Exited and nothing readable: the rest (if any) was read already.
                return
        pytest.fail("ferryd did not exit after the FIFO was drained")

    def close(self):
        os.close(self.fd)


def fill_pipe(d, count=1000):
    """Sends `count` events of ~1 KiB (well over a pipe's 64 KiB) and waits until FileOutput
    has them all, so every event has been routed to both outputs."""
    c = Client(d.port)
    pad = "p" * 1000
    c.send(b"".join(message("bulk", {"n": k, "pad": pad}) for k in range(count)))
    d.wait_lines(count)
    return c


def refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return True
    except (ConnectionResetError, TimeoutError, socket.timeout):
        return False  # queued on (or lost with) the listener as it closed: ask again
    s.close()
    return False


# ---- graceful stop ----------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_loses_nothing_and_acks_everything(ferryd, sig):
    n_conns, per_conn, per_frame = 4, 500, 10
    conns = [Client(ferryd.port) for _ in range(n_conns)]
    chunks = [[] for _ in range(n_conns)]
    for f in range(per_conn // per_frame):
        for ci, c in enumerate(conns):
            entries = [[event_time(SEC + n), {"c": ci, "n": n}]
                       for n in range(f * per_frame, (f + 1) * per_frame)]
            chunk = f"c{ci}-f{f}"
            c.send(msgpack.packb(["stop", entries, {"chunk": chunk}]))
            chunks[ci].append(chunk)
    ferryd.proc.send_signal(sig)  # at once: the acks are still on their way

    for ci, c in enumerate(conns):
        replies, eof = c.read()
        assert replies == [{"ack": ch} for ch in chunks[ci]], f"connection {ci}"
        assert eof, f"connection {ci} should be closed by the server after its acks"
        c.close()
    assert ferryd.proc.wait(timeout=DEADLINE) == 0
    lines = ferryd.lines()
    got = sorted((l["record"]["c"], l["record"]["n"]) for l in lines)
    assert got == [(c, n) for c in range(n_conns) for n in range(per_conn)]
    assert len(lines) == n_conns * per_conn
    assert ferryd.stderr().count("stopped: {") == 1


def test_new_connections_refused_after_sigterm(custom_ferryd, tmp_path):
    fifo = BlockedFifo(tmp_path / "slow.fifo")
    d = custom_ferryd(shutdown_timeout="60s", extra_config=fifo.config())
    c = fill_pipe(d)
    d.proc.send_signal(signal.SIGTERM)
    # The slow output keeps ferryd in its stop sequence; the listener is already closed.
    wait_for(lambda: refused(d.port), "connections to be refused after SIGTERM")
    assert d.proc.poll() is None
    fifo.drain_until_exit(d.proc)
    assert d.proc.wait(timeout=DEADLINE) == 0
    fifo.close()
    c.close()
    assert len(d.lines()) == 1000
    slow = fifo.data.decode().splitlines()
    assert len(slow) == 1000
    assert "shutdown_timeout reached" not in d.stderr()


@pytest.mark.parametrize("holder", ["idle_client", "blocked_output"])
def test_shutdown_timeout_bounds_the_stop(custom_ferryd, tmp_path, holder):
    fifo = BlockedFifo(tmp_path / "slow.fifo") if holder == "blocked_output" else None
    d = custom_ferryd(shutdown_timeout="1s", extra_config=fifo.config() if fifo else "")
    c = fill_pipe(d) if fifo else Client(d.port)
    c.send(message("held", {"n": 1}))
    if fifo is None:
        d.wait_lines(1)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=DEADLINE) == 0
    if fifo:
        assert "shutdown_timeout reached" in d.stderr()
        fifo.close()
    c.close()


# ---- SIGUSR1, SIGHUP --------------------------------------------------------------------

def test_sigusr1_reopens_file_and_reports_stats(ferryd):
    c = Client(ferryd.port)
    for k in range(3):
        c.send(message("rot", {"n": k}, chunk=f"a{k}"))
    assert c.acks(3) == [{"ack": f"a{k}"} for k in range(3)]
    rotated = ferryd.out_path + ".1"
    os.rename(ferryd.out_path, rotated)

    ferryd.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: f"[file] reopened {ferryd.out_path}" in ferryd.stderr(), "the reopen")
    for k in range(3, 5):
        c.send(message("rot", {"n": k}, chunk=f"a{k}"))
    assert c.acks(2) == [{"ack": "a3"}, {"ack": "a4"}]

    assert [l["record"]["n"] for l in read_json_lines(rotated)] == [0, 1, 2]
    assert [l["record"]["n"] for l in read_json_lines(ferryd.out_path)] == [3, 4]
    # The report printed for this SIGUSR1 comes before its own reopen: 1 so far.
    stats = ferryd.stats()
    assert stats["file"]["reopens"] == 1
    assert stats["file"]["events_out"] == 5
    assert stats["in"]["events"] == 5
    assert stats["in"]["acks_sent"] == 5
    assert ferryd.stderr().count("[file] reopened") == 2
    c.close()
    assert ferryd.stop() == 0


def test_sigusr1_during_traffic_splits_files_cleanly(ferryd):
    # Rotation while requests are in flight: every event lands in exactly one of the two
    # files, whole lines only, and per connection the old file holds a prefix.
    n_conns, per_conn, per_frame = 2, 1000, 20
    conns = [Client(ferryd.port) for _ in range(n_conns)]
    rotated = ferryd.out_path + ".1"
    frames = per_conn // per_frame
    for f in range(frames):
        for ci, c in enumerate(conns):
            entries = [[event_time(), {"c": ci, "n": n}]
                       for n in range(f * per_frame, (f + 1) * per_frame)]
            c.send(msgpack.packb(["rot", entries, {"chunk": f"{ci}-{f}"}]))
        if f == frames // 2:
            os.rename(ferryd.out_path, rotated)
            ferryd.proc.send_signal(signal.SIGUSR1)
    for c in conns:
        assert len(c.acks(frames)) == frames
    wait_for(lambda: "[file] reopened" in ferryd.stderr(), "the reopen")
    old, new = read_json_lines(rotated), read_json_lines(ferryd.out_path)
    for ci in range(n_conns):
        o = [l["record"]["n"] for l in old if l["record"]["c"] == ci]
        n = [l["record"]["n"] for l in new if l["record"]["c"] == ci]
        assert o + n == list(range(per_conn)), f"connection {ci}"
    assert ferryd.stop() == 0


def test_sighup_does_not_stop_ferryd(ferryd):
    ferryd.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP" in ferryd.stderr(), "the SIGHUP log line")
    assert ferryd.proc.poll() is None
    c = Client(ferryd.port)
    c.send(message("hup", {"n": 1}, chunk="h"))
    assert c.acks(1) == [{"ack": "h"}]
    assert [l["record"] for l in ferryd.wait_lines(1)] == [{"n": 1}]
    c.close()
    assert ferryd.stop() == 0


def test_second_sigterm_exits_at_once_with_1(custom_ferryd, tmp_path):
    fifo = BlockedFifo(tmp_path / "slow.fifo")
    d = custom_ferryd(shutdown_timeout="60s", extra_config=fifo.config())
    c = fill_pipe(d)
    d.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: refused(d.port), "the stop sequence to begin")
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=DEADLINE) == 1
    assert "second stop signal" in d.stderr()
    fifo.close()
    c.close()


# ---- --pid-file -------------------------------------------------------------------------

def test_pid_file_written_and_removed(custom_ferryd, tmp_path):
    pid_path = str(tmp_path / "ferryd.pid")
    d = custom_ferryd(args=["--pid-file", pid_path])

    def pid_text():
        if not os.path.exists(pid_path):
            return None
        with open(pid_path) as f:
            return f.read()

    wait_for(lambda: pid_text() == f"{d.proc.pid}\n", "the pid file")
    assert d.stop() == 0
    assert not os.path.exists(pid_path)


def test_pid_file_removed_when_shutdown_timeout_expires(custom_ferryd, tmp_path):
    pid_path = str(tmp_path / "ferryd.pid")
    fifo = BlockedFifo(tmp_path / "slow.fifo")
    d = custom_ferryd(shutdown_timeout="1s", extra_config=fifo.config(),
                      args=["--pid-file", pid_path])
    wait_for(lambda: os.path.exists(pid_path), "the pid file")
    c = fill_pipe(d)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=DEADLINE) == 0
    assert "shutdown_timeout reached" in d.stderr()
    fifo.close()
    c.close()
    assert not os.path.exists(pid_path)
