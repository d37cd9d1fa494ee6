# Slow and hostile peers: each limit crossed by one misbehaving client while a well-behaved
# one keeps being served. A client that does not read its acks is paused, then closed after
# ack_queue_timeout; 10,000 connections past max_connections wait in the backlog without
# spinning the loop; a request trickled one byte at a time is closed by frame_timeout.
import os
import resource
import select
import socket
import struct
import time

import msgpack
import pytest

from conftest import DEADLINE, wait_closed, wait_for
from test_heka_input import SPLITTER_FORM, records

SEC = 1700000000


def message(tag, record, chunk=None):
    req = [tag, msgpack.ExtType(0, struct.pack(">II", SEC, 0)), record]
    if chunk is not None:
        req.append({"chunk": chunk})
    return msgpack.packb(req)


class Client:
    def __init__(self, d):
        self.sock = d.connect()
        self.unpacker = msgpack.Unpacker(raw=False)

    def ack(self, n, timeout=DEADLINE):
        """Sends one request asking for an ack; returns the replies read by the deadline."""
        chunk = "ok%d" % n
        self.sock.sendall(message("good", {"n": n}, chunk=chunk))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for obj in self.unpacker:
                return obj
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                return None
            self.unpacker.feed(data)
        return None


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- ack_queue_limit / ack_queue_timeout ------------------------------------------------

def test_client_not_reading_acks_is_paused_then_closed(ferryd_factory):
    d = ferryd_factory(input_options='ack_queue_limit = "4KiB"\nack_queue_timeout = "2s"')
    good = Client(d)
    assert good.ack(0) == {"ack": "ok0"}

    # Small kernel buffers on our side, so what ferryd cannot write piles up in its own
    # write queue quickly, and our sends stall soon once it stops reading us.
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    slow.connect(("127.0.0.1", d.port))
    slow.setblocking(False)
    pad = "x" * 200  # long chunk ids: long acks
    batch = b"".join(message("slow", {"n": k}, chunk="%06d%s" % (k, pad)) for k in range(200))
    pending = b""
    sent = 0
    end = time.monotonic() + DEADLINE
    stalled = False
    while not stalled:
        assert time.monotonic() < end, "sends never stalled"
        assert sent < 256 << 20, "256 MiB sent and never paused"
        if not pending:
            pending = batch
        try:
            n = slow.send(pending)
            pending = pending[n:]
            sent += n
            continue
        except BlockingIOError:
            pass
        # Full for now: stalled for good only if ferryd stopped reading us.
        if d.counter("paused_read_buffer") >= 1:
            _, writable, _ = select.select([], [slow], [], 0.2)
            stalled = not writable
        else:
            select.select([], [slow], [], 0.05)
    # Paused, not closed; and only this connection: the other one is acked meanwhile.
    assert good.ack(1) == {"ack": "ok1"}
    st = d.stats()["in"]
    assert st["slow_ack_readers_closed"] == 0
    assert st["read_pauses"] >= 1 and st["paused_read_buffer"] >= 1

    # Still unread after ack_queue_timeout: closed and counted.
    d.wait_counter("slow_ack_readers_closed", 1)
    slow.setblocking(True)
    assert wait_closed(slow)
    slow.close()
    assert good.ack(2) == {"ack": "ok2"}
    st = d.stats()["in"]
    assert st["slow_ack_readers_closed"] == 1
    assert st["frame_timeouts"] == 0 and st["connections_idle_closed"] == 0
    good.sock.close()
    assert d.stop() == 0


# ---- max_connections: 10,000 clients --------------------------------------------------

CONNECTIONS = 10_000


def test_ten_thousand_connections_wait_in_the_backlog(ferryd_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CONNECTIONS + 512:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {CONNECTIONS + 512}")
    want = CONNECTIONS + 512 if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(want, 65536)), hard))
    d = ferryd_factory(input_options="max_connections = 100")
    served = Client(d)
    assert served.ack(0) == {"ack": "ok0"}

    flood = []
    try:
        for _ in range(CONNECTIONS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", d.port))
            flood.append(s)
        d.wait_counter("accept_paused", 1)
        wait_for(lambda: d.counter("connections_accepted") >= 100, "100 connections accepted")
        st = d.stats()["in"]
        assert st["connections_accepted"] == 100
        assert st["connections_rejected"] == 0
        # The accepted client is still served while thousands wait.
        assert served.ack(1) == {"ack": "ok1"}
        # The listener is not polled while at the limit: ferryd stays (nearly) idle. One
        # second of measurement, not a wait for an event; a busy accept loop would burn it all.
        before = cpu_seconds(d.proc.pid)
        time.sleep(1.0)
        assert cpu_seconds(d.proc.pid) - before < 0.3
    finally:
        for s in flood:
            s.close()

    # Once they are gone (those in the backlog are accepted, read EOF and close), new
    # connections are served again.
    fresh = Client(d)
    assert fresh.ack(2) == {"ack": "ok2"}
    assert served.ack(3) == {"ack": "ok3"}
    st = d.stats()["in"]
    assert st["accept_paused"] >= 1 and st["connections_rejected"] == 0
    served.sock.close()
    fresh.sock.close()
    assert d.stop() == 0


# ---- frame_timeout ----------------------------------------------------------------------

def trickle_until_closed(sock, data, interval=0.5):
    """Sends data one byte per interval until the peer closes; True if it did."""
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return True
        # The pacing: wait one interval for the close.
        sock.settimeout(interval)
        try:
            if sock.recv(1) == b"":
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def test_one_byte_per_interval_is_closed_by_frame_timeout(ferryd_factory):
    d = ferryd_factory(input_options='frame_timeout = "2s"')
    good = Client(d)
    slow = d.connect()
    started = time.monotonic()
    frame = message("slow", {"msg": "x" * 40}, chunk="trickled")
    assert trickle_until_closed(slow, frame), "a trickled request was never closed"
    assert time.monotonic() - started >= 1.9
    slow.close()
    assert good.ack(0) == {"ack": "ok0"}
    st = d.stats()["in"]
    assert st["frame_timeouts"] == 1
    assert st["connections_idle_closed"] == 0 and st["events"] == 1
    good.sock.close()
    assert d.stop() == 0


def test_heka_tcp_frame_timeout(tmp_path):
    from test_heka_input import HekaFerryd
    d = HekaFerryd(tmp_path, SPLITTER_FORM.replace(
        'splitter = "signed_splitter"', 'splitter = "signed_splitter"\nframe_timeout = "1s"'))
    try:
        rec = records("go-client-gen-none")[0]
        slow = d.connect()
        assert trickle_until_closed(slow, rec, interval=0.25)
        slow.close()
        good = d.connect()
        good.sendall(rec)
        wait_for(lambda: d.input_stats().get("messages") == 1, "the good record")
        st = d.input_stats()
        assert st["frame_timeouts"] == 1 and st["connections_idle_closed"] == 0
        good.close()
    finally:
        d.close()
