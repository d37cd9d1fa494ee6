# ForwardOutput end to end: a sender ferryd (ForwardInput -> ForwardOutput) and real
# receiver ferryds (ForwardInput -> FileOutput) on loopback, every event carrying a unique
# `seq`, counted exactly at the receivers: acks, the handshake, a receiver killed
# mid-stream, weighted load balancing with failover to a standby, graceful stop. Python
# sinks play the receivers real software should not be: one that never acks, one that
# closes after every frame, and one that records the wire format.
import collections
import gzip
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

import msgpack
import pytest

from conftest import DEADLINE, FERRYD, Ferryd, free_port, wait_for

SEC = 1700000000

# Short intervals keep the suite fast; every wait below still has a deadline.
FAST = """
flush_interval = "100ms"
heartbeat_interval = "200ms"
ack_response_timeout = "1s"
connect_timeout = "1s"
retry_wait = "100ms"
retry_max_interval = "1s"
"""


def et(sec, nsec=0):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


class ConfFerryd(Ferryd):
    """A ferryd running `config`, where @PORT@ is its ForwardInput port and @DIR@ its
    directory. `port` reuses a port (a receiver restarted in place); `name` keeps the
    files of several runs in one directory apart, except out.jsonl, which they share."""

    def __init__(self, tmp_path, config, port=None, name="ferryd"):  # only the config differs
        self.tmp_path = tmp_path
        self.port = port or free_port()
        self.out_path = str(tmp_path / "out.jsonl")
        self.config_path = str(tmp_path / f"{name}.toml")
        self.stderr_path = str(tmp_path / f"{name}.stderr.log")
        self.stdout_path = str(tmp_path / f"{name}.stdout.log")
        with open(self.config_path, "w") as f:
            f.write(config.replace("@PORT@", str(self.port)).replace("@DIR@", str(tmp_path)))
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

    def seqs(self, path=None):
        return [l["record"]["seq"] for l in self.lines_of(path or self.out_path)]

    def lines(self):
        return self.lines_of(self.out_path)

    @staticmethod
    def lines_of(path):
        """Complete lines only: a read racing the receiver's append can see half a line
        (reads do not wait for writes on Linux), and a receiver killed mid-write leaves one
        (its events were not acked, so they come again)."""
        import json
        if not os.path.exists(path):
            return []
        with open(path, "rb") as f:
            data = f.read()
        out = []
        for raw in data.split(b"\n")[:-1]:
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out


def receiver_config(extra_input="", hostname="receiver"):
    return f"""
[ferry]
hostname = "{hostname}"
shutdown_timeout = "5s"

[in]
type = "ForwardInput"
address = "127.0.0.1:@PORT@"
{extra_input}

[file]
type = "FileOutput"
match = "**"
path = "@DIR@/out.jsonl"
"""


def sender_config(servers, options="", secondary=False, shutdown_timeout="5s"):
    """A sender: ForwardInput on @PORT@ -> ForwardOutput `out` (matching everything), and
    optionally a FileOutput `sec` that only takes what `out` gives up on."""
    sec = ""
    if secondary:
        sec = """
[sec]
type = "FileOutput"
message_matcher = "FALSE"
path = "@DIR@/secondary.jsonl"
"""
        options += '\nsecondary = "sec"\n'
    # Options given here replace the FAST defaults of the same key (TOML forbids a key twice).
    given = {l.split("=")[0].strip() for l in options.splitlines() if "=" in l}
    fast = "\n".join(l for l in FAST.splitlines() if l.split("=")[0].strip() not in given)
    return f"""
[ferry]
hostname = "sender"
shutdown_timeout = "{shutdown_timeout}"

[in]
type = "ForwardInput"
address = "127.0.0.1:@PORT@"

[out]
type = "ForwardOutput"
match = "**"
servers = [{servers}]
{fast}
{options}
{sec}
"""


def server(port, **kw):
    items = [f'host = "127.0.0.1"', f"port = {port}"]
    for k, v in kw.items():
        items.append(f"{k} = " + (("true" if v else "false") if isinstance(v, bool)
                                  else str(v) if isinstance(v, int) else f'"{v}"'))
    return "{" + ", ".join(items) + "}"


def feed(port, seqs, tag="fo.test", batch=100, pad=""):
    """Sends `seqs` as Forward requests with acks, waiting for each ack, so every event has
    been accepted by the sender when this returns."""
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    unpacker = msgpack.Unpacker(raw=False)
    try:
        for i in range(0, len(seqs), batch):
            entries = [[et(SEC, n % 1000000000), {"seq": n, "pad": pad}]
                       for n in seqs[i:i + batch]]
            chunk = f"feed-{i}"
            s.sendall(msgpack.packb([tag, entries, {"chunk": chunk, "size": len(entries)}],
                                    use_bin_type=True))
            end = time.monotonic() + DEADLINE
            got = None
            while got is None:
                for obj in unpacker:
                    got = obj
                    break
                if got is not None:
                    break
                if time.monotonic() > end:
                    pytest.fail(f"no ack from the sender for {chunk}")
                data = s.recv(65536)
                if not data:
                    pytest.fail("the sender closed the feeding connection")
                unpacker.feed(data)
            assert got == {"ack": chunk}
    finally:
        s.close()


def check_exact(received, sent, what):
    """Every sent seq arrived; returns the number of duplicates (reported, not failed)."""
    counts = collections.Counter(received)
    missing = set(sent) - set(counts)
    extra = set(counts) - set(sent)
    assert not missing, f"{what}: {len(missing)} event(s) lost, e.g. {sorted(missing)[:10]}"
    assert not extra, f"{what}: unexpected seqs {sorted(extra)[:10]}"
    dups = sum(c - 1 for c in counts.values())
    print(f"\n{what}: {len(sent)} events sent, {len(received)} received, {dups} duplicate(s)")
    return dups


def out_stats(sender, node=None):
    st = sender.stats()
    return st.get("out", {}) if node is None else st.get(f"out.{node}", {})


# ---------------------------------------------------------------------------------------
# Python receivers for behaviour real software should not show.

class Sink:
    """A forward receiver on 127.0.0.1. mode: "ack" answers every chunk, "never_ack" reads
    and never answers, "close_after_frame" acks the first request of a connection and
    closes it (the rest of what the client sent is dropped). It records every request
    with its arrival time; empty connections (transport heartbeats) are counted apart."""

    def __init__(self, mode):
        self.mode = mode
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.frames = []  # (monotonic time, request as decoded)
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.lsock, selectors.EVENT_READ, None)
        while not self.stopping:
            for key, _ in sel.select(timeout=0.05):
                if key.data is None:
                    try:
                        conn, _ = self.lsock.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    with self.lock:
                        self.connections += 1
                    sel.register(conn, selectors.EVENT_READ, msgpack.Unpacker(raw=False))
                    continue
                conn, unpacker = key.fileobj, key.data
                try:
                    data = conn.recv(1 << 20)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    sel.unregister(conn)
                    conn.close()
                    continue
                unpacker.feed(data)
                for obj in unpacker:
                    if not isinstance(obj, list) or len(obj) < 2:
                        continue
                    with self.lock:
                        self.frames.append((time.monotonic(), obj))
                    opt = obj[2] if len(obj) > 2 and isinstance(obj[2], dict) else {}
                    if self.mode != "never_ack" and "chunk" in opt:
                        conn.sendall(msgpack.packb({"ack": opt["chunk"]}))
                    if self.mode == "close_after_frame":
                        sel.unregister(conn)
                        conn.close()
                        break
        sel.close()

    @staticmethod
    def entries(frame):
        opt = frame[2] if len(frame) > 2 else {}
        payload = frame[1]
        if opt.get("compressed") == "gzip":
            payload = gzip.decompress(payload)
        return _unpack_all(payload)

    def seqs(self):
        with self.lock:
            frames = list(self.frames)
        return [e[1]["seq"] for _, f in frames for e in self.entries(f)]

    def close(self):
        self.stopping = True
        self.thread.join(timeout=DEADLINE)
        self.lsock.close()


def _unpack_all(payload):
    u = msgpack.Unpacker(raw=False)
    u.feed(payload)
    return list(u)


@pytest.fixture
def sinks():
    made = []

    def make(mode):
        s = Sink(mode)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def daemons():
    started = []

    def make(tmp, config, **kw):
        d = ConfFerryd(tmp, config, **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        d.close()


def subdir(tmp_path, name):
    p = tmp_path / name
    p.mkdir(exist_ok=True)
    return p


# ---------------------------------------------------------------------------------------
# ferry -> ferry

def test_every_event_arrives_exactly_once_with_acks(tmp_path, daemons):
    """python3-fluent-logger -> sender -> receiver: each event once, nothing resent."""
    from fluent import sender as fluent_sender
    recv = daemons(subdir(tmp_path, "r"), receiver_config())
    send = daemons(subdir(tmp_path, "s"), sender_config(server(recv.port)))
    logger = fluent_sender.FluentSender("app", host="127.0.0.1", port=send.port,
                                        nanosecond_precision=True)
    n = 3000
    for i in range(n):
        assert logger.emit("log", {"seq": i, "msg": "x" * (i % 50)})
    logger.close()
    wait_for(lambda: len(recv.lines()) >= n, f"{n} events at the receiver")
    dups = check_exact(recv.seqs(), range(n), "fluent-logger -> ferry -> ferry")
    assert dups == 0
    lines = recv.lines()
    assert {l["tag"] for l in lines} == {"app.log"}
    st = out_stats(send)
    assert st["events_delivered"] == n
    assert st["chunks_resent"] == 0 and st["events_dropped"] == 0
    assert st["chunks_delivered"] == st["chunks_sealed"]
    assert recv.counter("acks_sent") == st["chunks_delivered"]  # every chunk asked for one


def test_handshake_with_shared_key(tmp_path, daemons):
    security = '[in.security]\nself_hostname = "receiver"\nshared_key = "s3cret"\n'
    recv = daemons(subdir(tmp_path, "r"), receiver_config(security))
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(recv.port, shared_key="s3cret")))
    seqs = list(range(1000))
    feed(send.port, seqs)
    wait_for(lambda: len(recv.lines()) >= len(seqs), "events through the handshake")
    assert check_exact(recv.seqs(), seqs, "with handshake") == 0
    assert recv.counter("handshakes") >= 1
    assert out_stats(send)["handshake_failures"] == 0


def test_wrong_shared_key_fails_and_goes_to_secondary(tmp_path, daemons):
    security = '[in.security]\nself_hostname = "receiver"\nshared_key = "right"\n'
    recv = daemons(subdir(tmp_path, "r"), receiver_config(security))
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(recv.port, shared_key="wrong"), "retry_max_times = 1",
                                 secondary=True))
    seqs = list(range(200))
    feed(send.port, seqs)
    sec_path = str(send.tmp_path / "secondary.jsonl")
    wait_for(lambda: len(ConfFerryd.lines_of(sec_path)) >= len(seqs), "events in the secondary")
    assert check_exact(send.seqs(sec_path), seqs, "wrong key -> secondary") == 0
    assert recv.lines() == []
    st = out_stats(send)
    assert st["handshake_failures"] >= 1
    assert st["events_to_secondary"] == len(seqs)
    assert "shared_key mismatch" in send.stderr()


def test_receiver_killed_mid_stream_loses_nothing(tmp_path, daemons):
    """SIGSTOP the receiver while chunks flow (so some are surely written and unacked),
    SIGKILL it, start it again on the same port: every event arrives; duplicates come
    only from resent (unacked) chunks."""
    rdir = subdir(tmp_path, "r")
    recv = daemons(rdir, receiver_config(), name="r1")
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(recv.port), 'chunk_limit_size = "4KiB"'))
    first = list(range(2000))
    feed(send.port, first)
    wait_for(lambda: len(recv.lines()) >= len(first), "the first events")
    second = list(range(2000, 12000))
    recv.proc.send_signal(signal.SIGSTOP)
    try:
        feed(send.port, second, pad="p" * 40)
        # Chunks are written to the stopped receiver (its socket buffer) and wait for acks.
        wait_for(lambda: out_stats(send, f"127.0.0.1:{recv.port}")["chunks_sent"]
                 > out_stats(send, f"127.0.0.1:{recv.port}")["chunks_delivered"],
                 "unacked chunks in flight")
    finally:
        recv.proc.kill()
        recv.proc.wait(timeout=DEADLINE)
    recv2 = daemons(rdir, receiver_config(), port=recv.port, name="r2")
    sent = first + second
    wait_for(lambda: set(recv2.seqs()) >= set(sent), "every event after the restart",
             timeout=30)
    dups = check_exact(recv2.seqs(), sent, "receiver killed and restarted")
    st = out_stats(send)
    print(f"sender: chunks_resent={st['chunks_resent']} events_resent={st['events_resent']} "
          f"connections_lost={st['connections_lost']} ack_timeouts={st['ack_timeouts']}")
    assert dups <= st["events_resent"]
    assert st["events_dropped"] == 0
    assert st["chunks_resent"] >= 1


def test_receiver_that_never_acks_times_out_with_backoff(tmp_path, daemons, sinks):
    sink = sinks("never_ack")
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(sink.port),
                                 'ack_response_timeout = "300ms"\nretry_wait = "200ms"\n'
                                 'retry_max_interval = "2s"\nretry_max_times = 3',
                                 secondary=True))
    seqs = list(range(300))
    feed(send.port, seqs)
    sec_path = str(send.tmp_path / "secondary.jsonl")
    wait_for(lambda: len(ConfFerryd.lines_of(sec_path)) >= len(seqs),
             "the chunk to reach the secondary after its retries")
    # Nothing lost: what the receiver never acked went to the secondary, exactly once.
    assert check_exact(send.seqs(sec_path), seqs, "never-acking receiver -> secondary") == 0
    st = out_stats(send)
    assert st["ack_timeouts"] >= 1
    assert st["chunks_resent"] >= 1
    assert st["events_to_secondary"] == len(seqs)
    assert st["events_dropped"] == 0
    # The receiver saw each chunk at most 1 + retry_max_times times, and never twice
    # within ack_response_timeout: resends wait for the timeout and then the backoff.
    by_id = collections.defaultdict(list)
    for t, f in list(sink.frames):
        by_id[f[2]["chunk"]].append(t)
    assert by_id
    for cid, times in by_id.items():
        assert len(times) <= 4, f"chunk {cid} sent {len(times)} times"
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= 0.3 for g in gaps), f"chunk {cid} resent too soon: {gaps}"
    # The waits grow (capped exponential with jitter in [base/2, base]).
    waits = [int(m) for m in re.findall(r"retrying in (\d+) ms", send.stderr())]
    print(f"\nbackoff waits (ms): {waits}; counters backoff_waits={st['backoff_waits']} "
          f"backoff_ms={st['backoff_ms']}")
    assert len(waits) >= 2
    assert waits == sorted(waits) and waits[-1] > waits[0]


def test_receiver_that_closes_after_every_frame(tmp_path, daemons, sinks):
    sink = sinks("close_after_frame")
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(sink.port),
                                 'chunk_limit_size = "2KiB"\nretry_wait = "20ms"\n'
                                 'retry_max_interval = "200ms"'))
    seqs = list(range(600))
    feed(send.port, seqs, batch=600)  # one request: ~20 chunks ready at once, pipelined
    wait_for(lambda: set(sink.seqs()) >= set(seqs), "every event at the closing receiver",
             timeout=30)
    dups = check_exact(sink.seqs(), seqs, "receiver closing after every frame")
    st = out_stats(send)
    # It closes with our next chunks unread, so its kernel answers with a reset, which can
    # destroy the ack it just sent before we read it: that chunk comes again. Only such
    # resent chunks may be duplicated.
    print(f"sender: chunks_resent={st['chunks_resent']} events_resent={st['events_resent']}")
    assert dups <= st["events_resent"]
    assert st["events_delivered"] == len(seqs)
    assert st["connections_lost"] >= 1  # pipelined chunks lost with the connection
    assert sink.connections > st["chunks_delivered"] // 2


def test_weighted_split_failover_and_standby(tmp_path, daemons):
    ra = daemons(subdir(tmp_path, "a"), receiver_config(hostname="a"))
    rb = daemons(subdir(tmp_path, "b"), receiver_config(hostname="b"))
    rs = daemons(subdir(tmp_path, "s"), receiver_config(hostname="s"))
    servers = ", ".join([server(ra.port, weight=60, name="a"),
                         server(rb.port, weight=40, name="b"),
                         server(rs.port, weight=60, standby=True, name="standby")])
    send = daemons(subdir(tmp_path, "snd"),
                   sender_config(servers, 'chunk_limit_size = "1KiB"'))

    def received():
        return ra.seqs() + rb.seqs() + rs.seqs()

    # 1. All up: near 60/40 between a and b, nothing to the standby.
    phase1 = list(range(3000))
    feed(send.port, phase1, batch=50)
    wait_for(lambda: set(received()) >= set(phase1), "phase 1 events")
    a, b = len(ra.seqs()), len(rb.seqs())
    share = a / (a + b)
    print(f"\nsplit with a=60, b=40: a={a} b={b} ({share:.1%} to a), standby={len(rs.seqs())}")
    assert 0.5 <= share <= 0.7
    assert rs.seqs() == []

    # 2. a down: its traffic moves (to b, and to the standby that covers a's weight).
    ra.proc.kill()
    ra.proc.wait(timeout=DEADLINE)
    a_before = len(ra.seqs())
    phase2 = list(range(3000, 5000))
    feed(send.port, phase2, batch=50)
    wait_for(lambda: set(received()) >= set(phase1 + phase2), "phase 2 events")
    assert len(ra.seqs()) == a_before
    print(f"a down: b={len(rb.seqs())} standby={len(rs.seqs())}")

    # 3. b down too: the standby takes everything.
    rb.proc.kill()
    rb.proc.wait(timeout=DEADLINE)
    b_before, s_before = len(rb.seqs()), len(rs.seqs())
    phase3 = list(range(5000, 6000))
    feed(send.port, phase3, batch=50)
    wait_for(lambda: set(received()) >= set(phase1 + phase2 + phase3), "phase 3 events")
    assert len(rb.seqs()) == b_before
    assert set(phase3) <= set(rs.seqs()[s_before:]) | set(rs.seqs())
    dups = check_exact(received(), phase1 + phase2 + phase3, "60/40 + standby with failovers")
    st = out_stats(send)
    assert dups <= st["events_resent"]
    assert out_stats(send, "a")["marked_down"] >= 1
    assert out_stats(send, "b")["marked_down"] >= 1
    assert out_stats(send, "standby")["events_delivered"] >= len(phase3)


# ---------------------------------------------------------------------------------------
# Wire format, heartbeats, stopping

@pytest.mark.parametrize("options,check", [
    ("", "eventtime"),
    ('compress = "gzip"', "gzip"),
    ("time_as_integer = true", "integer"),
    ("send_metadata = true", "metadata"),
    ("require_ack_response = false", "noack"),
], ids=["default", "gzip", "time_as_integer", "send_metadata", "no_ack"])
def test_wire_format(tmp_path, daemons, sinks, options, check):
    sink = sinks("ack")
    send = daemons(subdir(tmp_path, "s"), sender_config(server(sink.port), options))
    seqs = list(range(50))
    feed(send.port, seqs)
    wait_for(lambda: set(sink.seqs()) >= set(seqs), "the chunk at the sink")
    _, frame = sink.frames[0]
    assert len(frame) == 3 and frame[0] == "fo.test"
    assert isinstance(frame[1], bytes)  # bin, not str
    opt = frame[2]
    entries = Sink.entries(frame)
    assert opt["size"] == len(entries)
    if check == "noack":
        assert "chunk" not in opt
    else:
        assert len(opt["chunk"]) == 24 and opt["chunk"].endswith("==")
    assert ("compressed" in opt) == (check == "gzip")
    if check == "gzip":
        assert opt["compressed"] == "gzip" and frame[1][:2] == b"\x1f\x8b"
    t = entries[0][0]
    if check == "integer":
        assert t == SEC
    elif check == "metadata":
        assert isinstance(t, list) and t[0] == et(SEC, 0) and t[1] == {}
    else:
        assert t == et(SEC, 0)  # the EventTime as received, fixext8
    assert entries[7][1] == {"seq": 7, "pad": ""}


@pytest.mark.parametrize("hb", ["udp", "none"])
def test_other_heartbeats(tmp_path, daemons, hb):
    recv = daemons(subdir(tmp_path, "r"), receiver_config())
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(recv.port), f'heartbeat_type = "{hb}"'))
    seqs = list(range(500))
    feed(send.port, seqs)
    wait_for(lambda: len(recv.lines()) >= len(seqs), "events")
    check_exact(recv.seqs(), seqs, f"heartbeat_type {hb}")
    node = f"127.0.0.1:{recv.port}"
    if hb == "udp":
        send.wait_counter("heartbeats_ok", 2, component=f"out.{node}")
        assert recv.counter("heartbeats_udp") >= 2
    else:
        assert out_stats(send, node)["heartbeats_ok"] == 0


def test_graceful_stop_delivers_what_is_buffered(tmp_path, daemons):
    recv = daemons(subdir(tmp_path, "r"), receiver_config())
    # A long flush_interval: the events sit in an open chunk until the stop flushes it.
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(recv.port), 'flush_interval = "1h"'))
    seqs = list(range(777))
    feed(send.port, seqs)
    assert recv.lines() == []
    assert send.stop() == 0
    assert check_exact(recv.seqs(), seqs, "flushed on SIGTERM") == 0


def test_stop_with_receiver_down_hands_chunks_to_secondary(tmp_path, daemons):
    dead_port = free_port()  # nothing listens there
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(dead_port), secondary=True, shutdown_timeout="2s"))
    seqs = list(range(400))
    feed(send.port, seqs)
    send.wait_counter("no_server_available", 1, component="out")
    assert send.stop() == 0  # before shutdown_timeout: the deadline is 3/4 of it
    sec_path = str(send.tmp_path / "secondary.jsonl")
    assert check_exact(send.seqs(sec_path), seqs, "undeliverable at stop -> secondary") == 0
    assert "stop deadline reached" in send.stderr()


def test_without_secondary_exhausted_chunks_are_dropped_loudly(tmp_path, daemons):
    dead_port = free_port()
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(dead_port), "retry_max_times = 1"))
    feed(send.port, list(range(10)))
    send.wait_counter("events_dropped", 10, component="out")
    assert "dropping 10 event(s)" in send.stderr()


def test_buffer_limit_holds_acks_then_refuses(tmp_path, daemons):
    """total_limit_size crossed: the batch that crosses it is taken but its ack waits until
    the buffer drains; the next one, with that much already waiting, is refused (no ack,
    counted) and lost to nobody: its sender still has it."""
    recv = daemons(subdir(tmp_path, "r"), receiver_config())
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(recv.port),
                                 'total_limit_size = 1024\nchunk_limit_size = 512'))
    recv.proc.send_signal(signal.SIGSTOP)  # nothing is acked: the buffer cannot drain
    s = socket.create_connection(("127.0.0.1", send.port), timeout=DEADLINE)
    unpacker = msgpack.Unpacker(raw=False)

    def request(seqs, chunk):
        entries = [[et(SEC), {"seq": n, "pad": "x" * 40}] for n in seqs]
        s.sendall(msgpack.packb(["fo.limit", entries, {"chunk": chunk}], use_bin_type=True))

    def replies(timeout):
        s.settimeout(timeout)
        try:
            data = s.recv(65536)
        except socket.timeout:
            data = b""
        unpacker.feed(data)
        return list(unpacker)

    try:
        request(range(0, 30), "a")  # ~1.6 KB: over the limit once taken
        send.wait_counter("acks_held", 1, component="out")
        request(range(30, 60), "b")  # 1.6 KB already waiting for room: refused
        send.wait_counter("events_refused", 30, component="out")
        assert replies(0.3) == []  # neither is acked while the receiver is stopped
    finally:
        recv.proc.send_signal(signal.SIGCONT)
    got = []
    end = time.monotonic() + DEADLINE
    while not got and time.monotonic() < end:
        got = replies(DEADLINE)
    assert got == [{"ack": "a"}]  # the buffer drained: the held ack goes out
    # Acks go in request order, so b's refusal is counted once a's ack went out.
    send.wait_counter("acks_withheld", 1, component="in")
    request(range(30, 60), "b")  # the refused batch, sent again, is taken now
    got = []
    while not got and time.monotonic() < end:
        got = replies(DEADLINE)
    assert got == [{"ack": "b"}]
    s.close()
    wait_for(lambda: set(recv.seqs()) >= set(range(60)), "both batches at the receiver")
    check_exact(recv.seqs(), range(60), "held, refused, resent")


def test_keepalive_off_uses_one_connection_per_chunk(tmp_path, daemons, sinks):
    sink = sinks("ack")
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(server(sink.port),
                                 'keepalive = false\nchunk_limit_size = "1KiB"\n'
                                 'heartbeat_type = "none"'))
    seqs = list(range(300))
    feed(send.port, seqs, batch=30)
    wait_for(lambda: set(sink.seqs()) >= set(seqs), "every event")
    st = out_stats(send)
    assert check_exact(sink.seqs(), seqs, "keepalive = false") == 0
    assert st["chunks_delivered"] >= 5
    assert sink.connections == st["chunks_delivered"]


def test_host_name_is_resolved(tmp_path, daemons):
    recv = daemons(subdir(tmp_path, "r"), receiver_config())
    send = daemons(subdir(tmp_path, "s"),
                   sender_config(f'{{host = "localhost", port = {recv.port}, name = "lh"}}',
                                 'expire_dns_cache = "0"'))
    seqs = list(range(200))
    feed(send.port, seqs)
    wait_for(lambda: len(recv.lines()) >= len(seqs), "events sent to localhost")
    check_exact(recv.seqs(), seqs, "host = localhost")
    assert out_stats(send, "lh")["events_delivered"] == len(seqs)


def _pb_varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def _pb_bytes(field, data):
    return _pb_varint(field << 3 | 2) + _pb_varint(len(data)) + data


def heka_message(seq, type_):
    """A Heka Message (message.proto): Uuid, Timestamp, Type, Logger, Payload and a string
    field `seq`, framed as a Heka stream record."""
    field = _pb_bytes(1, b"seq") + _pb_varint(2 << 3) + _pb_varint(0) + _pb_bytes(4, str(seq).encode())
    body = (_pb_bytes(1, seq.to_bytes(16, "big")) + _pb_varint(2 << 3) +
            _pb_varint(SEC * 1000000000 + seq) + _pb_bytes(3, type_.encode()) +
            _pb_bytes(4, b"heka-test") + _pb_bytes(6, b"payload %d" % seq) + _pb_bytes(10, field))
    header = b"\x08" + _pb_varint(len(body))
    return b"\x1e" + bytes([len(header)]) + header + b"\x1f" + body


def test_heka_messages_are_forwarded_as_fluentd_events(tmp_path, daemons):
    recv = daemons(subdir(tmp_path, "r"), receiver_config())
    config = sender_config(server(recv.port)).replace(
        'type = "ForwardInput"\naddress = "127.0.0.1:@PORT@"',
        'type = "TcpInput"\naddress = "127.0.0.1:@PORT@"')
    send = daemons(subdir(tmp_path, "s"), config)
    types = ["heka.a", "heka.b", ""]
    n = 300
    with socket.create_connection(("127.0.0.1", send.port), timeout=DEADLINE) as s:
        s.sendall(b"".join(heka_message(i, types[i % 3]) for i in range(n)))
    wait_for(lambda: len(recv.lines()) >= n, "the Heka messages at the receiver")
    lines = recv.lines()
    assert collections.Counter(l["tag"] for l in lines) == {"heka.a": 100, "heka.b": 100,
                                                            "heka": 100}
    by_seq = {int(l["record"]["seq"]): l for l in lines}
    assert sorted(by_seq) == list(range(n))
    assert by_seq[7]["record"]["Payload"] == "payload 7"
    assert by_seq[7]["time"] == "2023-11-14T22:13:20.000000007Z"  # ns kept (EventTime)


def test_handshake_with_user_auth(tmp_path, daemons):
    security = ('[in.security]\nself_hostname = "receiver"\nshared_key = "s3cret"\n'
                'user_auth = true\n[[in.security.users]]\nusername = "alice"\n'
                'password = "wonderland"\n')
    recv = daemons(subdir(tmp_path, "r"), receiver_config(security))
    send = daemons(subdir(tmp_path, "s"), sender_config(
        server(recv.port, shared_key="s3cret", username="alice", password="wonderland")))
    seqs = list(range(300))
    feed(send.port, seqs)
    wait_for(lambda: len(recv.lines()) >= len(seqs), "events through user auth")
    assert check_exact(recv.seqs(), seqs, "handshake with user auth") == 0
    assert recv.counter("auth_failures") == 0


def _sha512_hex(*parts):
    import hashlib
    h = hashlib.sha512()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
    return h.hexdigest()


class HandshakeServer:
    """forward.md §1.8 written out in Python: HELO (nonce and auth as str of raw bytes, as
    Fluent Bit sends them, and keepalive false), checks the PING with hashlib, PONG, then
    acks one request and closes (keepalive false means one request per connection)."""

    def __init__(self, key, user, password):
        self.key, self.user, self.password = key, user, password
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.05)
        self.port = self.lsock.getsockname()[1]
        self.pings, self.errors, self.frames_per_conn, self.seqs = [], [], [], []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(DEADLINE)
                try:
                    self._serve(conn)
                except (OSError, ValueError) as e:
                    self.errors.append(repr(e))

    def _serve(self, conn):
        nonce, auth = os.urandom(16), os.urandom(16)
        # Raw bytes as msgpack str: use_bin_type=False packs bytes as str.
        conn.sendall(msgpack.packb(["HELO", {"nonce": nonce, "auth": auth, "keepalive": False}],
                                   use_bin_type=False))
        unpacker = msgpack.Unpacker(raw=True)
        objs = self._read(conn, unpacker, 1)
        if not objs:
            return  # a transport heartbeat: connect and close
        ping = objs[0]
        self.pings.append(ping)
        _, host, salt, digest, user, pw_digest = ping
        ok = (digest.decode() == _sha512_hex(salt, host, nonce, self.key) and
              user.decode() == self.user and
              pw_digest.decode() == _sha512_hex(auth, user, self.password))
        conn.sendall(msgpack.packb(["PONG", ok, "" if ok else "shared_key mismatch", "py-server",
                                    _sha512_hex(salt, "py-server", nonce, self.key)]))
        if not ok:
            self.errors.append("bad PING")
            return
        frames = self._read(conn, unpacker, 1)
        self.frames_per_conn.append(len(frames))
        for f in frames:
            entries = msgpack.Unpacker(raw=False)
            entries.feed(f[1])
            self.seqs.extend(e[1]["seq"] for e in entries)
            conn.sendall(msgpack.packb({"ack": f[2][b"chunk"]}))

    @staticmethod
    def _read(conn, unpacker, n):
        out = []
        while len(out) < n:
            data = conn.recv(65536)
            if not data:
                break
            unpacker.feed(data)
            out.extend(unpacker)
        return out

    def close(self):
        self.stopping = True
        self.thread.join(timeout=DEADLINE)
        self.lsock.close()


def test_handshake_client_against_an_independent_server(tmp_path, daemons):
    hs = HandshakeServer("k3y", "alice", "pw")
    try:
        send = daemons(subdir(tmp_path, "s"), sender_config(
            server(hs.port, shared_key="k3y", username="alice", password="pw"),
            'chunk_limit_size = "1KiB"\nheartbeat_type = "none"'))
        seqs = list(range(200))
        feed(send.port, seqs, batch=20)
        wait_for(lambda: set(hs.seqs) >= set(seqs), "every event through the Python server")
    finally:
        hs.close()
    assert hs.errors == []
    ping = hs.pings[0]
    assert len(ping) == 6 and ping[0] == b"PING" and ping[1] == b"sender"
    assert len(ping[2]) == 32  # a fresh hex salt, like Fluentd's
    check_exact(hs.seqs, seqs, "handshake with an independent server")
    # HELO said keepalive false: one request per connection, never a window of them.
    assert hs.frames_per_conn and set(hs.frames_per_conn) == {1}
    assert len(hs.frames_per_conn) == out_stats(send)["chunks_delivered"]
