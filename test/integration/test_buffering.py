# Output buffers (issue 6): a stuck output fills only its own queue; full_action block pushes
# back through TCP without closing the sender; drop_oldest / drop_newest lose exactly what
# they count, from the right end. The stuck sink is a FIFO the test does not read: its
# FileOutput's write cannot finish until the test drains it. Events carry a unique `seq`.
import json
import os
import socket

import msgpack

from conftest import DEADLINE, read_json_lines, wait_for


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


class Fifo:
    """A FIFO ferryd writes into; the test holds the read end and reads only when told."""

    def __init__(self, path):
        self.path = str(path)
        os.mkfifo(self.path)
        # Opened first and non-blocking, so ferryd's open for writing does not wait.
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()

    def drain(self):
        for _ in range(100000):
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.data.extend(chunk)
        return self

    def lines(self):
        whole = bytes(self.data[:self.data.rfind(b"\n") + 1])
        return [json.loads(line) for line in whole.decode().splitlines() if line]

    def close(self):
        os.close(self.fd)


def slow_output(fifo, buffer_options):
    return f"""
[slow]
type = "FileOutput"
match = "**"
path = "{fifo.path}"

[slow.buffer]
{buffer_options}
"""


def messages(first, n, pad=200):
    """n Message-mode frames (one event, one batch each), seq first .. first+n-1, no acks."""
    return b"".join(pack(["buf.t", 1700000000, {"seq": first + i, "pad": "p" * pad}])
                    for i in range(n))


def rss_kib(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def forward_frames(n, per_frame=100, pad=200):
    """Forward-mode frames of `per_frame` events, seq 0 .. n-1, no acks, as one byte string."""
    return b"".join(
        pack(["buf.t", [[1700000000, {"seq": f + i, "pad": "p" * pad}]
                        for i in range(per_frame)]])
        for f in range(0, n, per_frame))


def send_until_stalled(s, payload):
    """Non-blocking sends until the kernel refuses more; returns how much went out."""
    s.setblocking(False)
    off = 0
    for _ in range(100000):
        try:
            off += s.send(payload[off:off + (256 << 10)])
        except BlockingIOError:
            break
        if off == len(payload):
            break
    return off


def finish_while_draining(s, payload, off, fifo, n):
    """Drains the FIFO and sends the rest of `payload` until n lines came through."""
    sent = {"off": off}

    def progress():
        fifo.drain()
        if sent["off"] < len(payload):
            try:
                sent["off"] += s.send(payload[sent["off"]:sent["off"] + (256 << 10)])
            except BlockingIOError:
                pass
        return sent["off"] == len(payload) and len(fifo.lines()) >= n

    wait_for(progress, f"{n} events through the stuck output", timeout=90)


def send_all(d, data):
    s = d.connect()
    s.sendall(data)
    return s


def test_drop_newest_loses_exactly_the_newest(ferryd_factory, tmp_path):
    fifo = Fifo(tmp_path / "slow.fifo")
    try:
        d = ferryd_factory(extra_config=slow_output(
            fifo, 'memory_limit = "64KiB"\nfull_action = "drop_newest"'))
        n = 20000
        s = send_all(d, messages(0, n))
        # The regular output takes everything: the stuck one does not hold it back.
        assert [l["record"]["seq"] for l in d.wait_lines(n)] == list(range(n))
        stats = d.stats()["slow"]
        dropped = stats["buffer_dropped_newest_events"]
        assert 0 < dropped < n
        assert stats["buffer_dropped_oldest_events"] == 0
        # The queue never went past its limit (plus the one batch an empty queue takes).
        assert stats["buffer_peak_bytes"] <= 64 * 1024 + 1024
        # Now let the stuck output go: exactly the first n - dropped arrive.
        wait_for(lambda: len(fifo.drain().lines()) >= n - dropped,
                 f"{n - dropped} lines through the FIFO")
        d.wait_counter("buffer_inflight_bytes", 0, "slow")
        got = [l["record"]["seq"] for l in fifo.drain().lines()]
        assert got == list(range(n - dropped))
        s.close()
    finally:
        fifo.close()


def test_drop_oldest_loses_exactly_the_oldest_queued(ferryd_factory, tmp_path):
    fifo = Fifo(tmp_path / "slow.fifo")
    try:
        d = ferryd_factory(extra_config=slow_output(
            fifo, 'memory_limit = "64KiB"\nfull_action = "drop_oldest"'))
        n = 20000
        s = send_all(d, messages(0, n))
        assert len(d.wait_lines(n)) == n
        stats = d.stats()["slow"]
        dropped = stats["buffer_dropped_oldest_events"]
        assert 0 < dropped < n
        assert stats["buffer_dropped_newest_events"] == 0
        assert stats["buffer_peak_bytes"] <= 64 * 1024 + 1024
        wait_for(lambda: len(fifo.drain().lines()) >= n - dropped,
                 f"{n - dropped} lines through the FIFO")
        got = [l["record"]["seq"] for l in fifo.drain().lines()]
        assert len(got) == n - dropped
        # What was already with the output (a prefix) and the newest (a suffix up to the
        # last one sent) arrive; the dropped ones are one run in between.
        head = next(i for i, seq in enumerate(got) if seq != i)
        assert got[:head] == list(range(head))
        assert got[head:] == list(range(head + dropped, n))
        s.close()
    finally:
        fifo.close()


def test_stuck_output_does_not_hold_back_the_other(ferryd_factory, tmp_path):
    fifo = Fifo(tmp_path / "slow.fifo")
    try:
        d = ferryd_factory(extra_config=slow_output(
            fifo, 'memory_limit = "1MiB"\nfull_action = "drop_oldest"'))
        rounds, per_round = 20, 10000
        s = d.connect()
        for r in range(rounds):
            entries = [[1700000000, {"seq": r * per_round + i, "pad": "p" * 100}]
                       for i in range(per_round)]
            s.sendall(pack(["buf.t", entries]))
        total = rounds * per_round
        lines = d.wait_lines(total, timeout=60)
        assert sorted(l["record"]["seq"] for l in lines) == list(range(total))
        stats = d.stats()["slow"]
        # The stuck output's queue stayed within its limit (+ one batch of ~1.2 MB).
        assert stats["buffer_peak_bytes"] <= (1 << 20) + 2 * (1 << 20)
        assert stats["buffer_dropped_oldest_events"] > 0
        peak_rss = rss_kib(d.proc.pid)
        print(f"ferryd peak RSS with one stuck output after {total} events: {peak_rss} KiB")
        assert peak_rss < 256 * 1024
        s.close()
    finally:
        fifo.close()


def test_block_pushes_back_through_tcp_without_closing(ferryd_factory, tmp_path):
    fifo = Fifo(tmp_path / "slow.fifo")
    try:
        d = ferryd_factory(extra_config=slow_output(
            fifo, 'memory_limit = "64KiB"\nfull_action = "block"'))
        n = 100000
        payload = forward_frames(n)
        s = d.connect()
        # More than every buffer on the way can hold: the kernel's socket buffers, the
        # output's queue and what it has in flight.
        off = send_until_stalled(s, payload)
        assert off < len(payload), "ferryd kept reading although its output was stuck"
        d.wait_counter("output_full_activations", 1, "flow")
        slow = d.stats()["slow"]
        assert slow["buffer_dropped_newest_events"] == 0
        assert slow["buffer_dropped_oldest_events"] == 0
        assert slow["buffer_refused_overflow_events"] == 0

        # Let the stuck output go: ferryd reads again, the rest goes out on the same
        # connection, and every event arrives in both outputs.
        finish_while_draining(s, payload, off, fifo, n)
        assert [l["record"]["seq"] for l in fifo.lines()] == list(range(n))
        assert [l["record"]["seq"] for l in d.wait_lines(n)] == list(range(n))
        # Never disconnected: the same connection is still served.
        s.setblocking(True)
        s.settimeout(DEADLINE)
        s.sendall(pack(["buf.t", 1700000000, {"seq": -1}, {"chunk": "still-here"}]))
        wait_for(lambda: len(fifo.drain().lines()) > n, "the last event")
        assert msgpack.unpackb(s.recv(1024)) == {"ack": "still-here"}
        assert d.counter("connections_closed_on_error") == 0
        s.close()
    finally:
        fifo.close()


def test_process_memory_budget_pauses_inputs_before_any_output_drops(ferryd_factory, tmp_path):
    # The stuck output would drop only past its own 8 MiB; the process budget (256 KiB)
    # stops the inputs long before that, so nothing is dropped and the sender waits.
    fifo = Fifo(tmp_path / "slow.fifo")
    try:
        d = ferryd_factory(
            global_options='memory_limit = "256KiB"\n',
            extra_config=slow_output(fifo, 'memory_limit = "8MiB"\nfull_action = "drop_oldest"'))
        n = 60000
        payload = forward_frames(n)
        s = d.connect()
        off = send_until_stalled(s, payload)
        assert off < len(payload), "ferryd kept reading past its memory budget"
        d.wait_counter("budget_pressure", 1, "flow")
        d.wait_counter("paused_memory_budget", 1)
        stats = d.stats()
        assert stats["slow"]["buffer_dropped_oldest_events"] == 0
        # The budget bounds what the buffers hold (plus what was read before the pause).
        assert stats["flow"]["budget_peak"] < 256 * 1024 + (2 << 20)
        finish_while_draining(s, payload, off, fifo, n)
        assert [l["record"]["seq"] for l in fifo.lines()] == list(range(n))
        assert d.stats()["slow"]["buffer_dropped_oldest_events"] == 0
        s.close()
    finally:
        fifo.close()
