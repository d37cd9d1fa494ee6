# Heka TcpOutput end to end, against a Python sink on 127.0.0.1: Fluentd events bridged
# (bridge.md), the relay rule on hekad's own captures, peer down or dropping, reconnect_after,
# the memory bound, signing, shutdown, config errors. Decoded with a small protobuf reader.
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import threading
import time

import msgpack
import pytest
from fluent import sender

from conftest import DEADLINE, FERRYD, VECTORS, Ferryd, free_port, recv_exactly, wait_for

HEKA = os.path.join(VECTORS, "heka")
KEYS = {"test_0": "4865ey9urgkidls xtb0[7lf9rzcivthkm",
        "test_1": "xdd908lfcgikauexdi8elogusridaxoalf"}
UUID_TEXT = "0f8fad5b-d9cb-469f-a165-70867728950e"


# ------------------------------------------------------------------------------------------
# Protobuf and framing, just enough to read what ferryd writes


def read_varint(buf, i):
    result, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        assert shift < 70, "varint too long"


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def parse_pb(buf):
    """[(field number, wire type, value)] of one protobuf message; value is an int for
    varints, bytes otherwise."""
    out, i = [], 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 1:
            v, i = bytes(buf[i:i + 8]), i + 8
        elif wire == 2:
            n, i = read_varint(buf, i)
            v, i = bytes(buf[i:i + n]), i + n
        elif wire == 5:
            v, i = bytes(buf[i:i + 4]), i + 4
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((field, wire, v))
    assert i == len(buf), "truncated protobuf"
    return out


def signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


VALUE_TYPES = ["STRING", "BYTES", "INTEGER", "DOUBLE", "BOOL"]


def decode_field(buf):
    f = {"value_type": "STRING", "values": []}
    for field, wire, v in parse_pb(buf):
        if field == 1:
            f["name"] = v.decode()
        elif field == 2:
            f["value_type"] = VALUE_TYPES[v]
        elif field == 3:
            f["representation"] = v.decode()
        elif field == 4:
            f["values"].append(v.decode())
        elif field == 5:
            f["values"].append(v)
        elif field == 6:
            if wire == 2:
                i = 0
                while i < len(v):
                    n, i = read_varint(v, i)
                    f["values"].append(signed(n, 64))
            else:
                f["values"].append(signed(v, 64))
        elif field == 7:  # packed (wire 2) or one fixed64: either way 8-byte doubles
            f["values"].extend(struct.unpack(f"<{len(v) // 8}d", v))
        elif field == 8:
            if wire == 2:
                f["values"].extend(bool(b) for b in v)
            else:
                f["values"].append(bool(v))
    return f


def decode_message(body):
    m = {"fields": []}
    names = {3: "type", 4: "logger", 6: "payload", 7: "env_version", 9: "hostname"}
    for field, _, v in parse_pb(body):
        if field == 1:
            m["uuid"] = v
        elif field == 2:
            m["timestamp"] = signed(v, 64)
        elif field in names:
            m[names[field]] = v.decode()
        elif field == 5:
            m["severity"] = signed(v, 32)
        elif field == 8:
            m["pid"] = signed(v, 32)
        elif field == 10:
            m["fields"].append(decode_field(v))
    return m


def split_frames(data):
    """(header fields, body) for each whole record of a ferryd stream, and the number of
    bytes left over (an incomplete record at the end). The stream must have no garbage."""
    out, i = [], 0
    while i + 2 <= len(data):
        assert data[i] == 0x1E, f"record separator expected at {i}"
        hlen = data[i + 1]
        if i + 3 + hlen > len(data):
            break
        assert data[i + 2 + hlen] == 0x1F, f"unit separator expected at {i + 2 + hlen}"
        header = {field: v for field, _, v in parse_pb(data[i + 2:i + 2 + hlen])}
        end = i + 3 + hlen + header[1]
        if end > len(data):
            break
        out.append((header, bytes(data[i + 3 + hlen:end])))
        i = end
    return out, len(data) - i


def frame(body):
    header = b"\x08" + varint(len(body))
    return b"\x1e" + bytes([len(header)]) + header + b"\x1f" + body


def field_map(m):
    return {f["name"]: f for f in m["fields"]}


# ------------------------------------------------------------------------------------------
# The peer


class Sink:
    """A TCP server on 127.0.0.1 keeping each connection's bytes. With `reset_after`, the
    first connection is reset (RST) once it has received that many bytes."""

    def __init__(self, port=0, reset_after=None):
        self.reset_after = reset_after
        self.lock = threading.Lock()
        self.conns = []
        self.socks = []
        self.stopping = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(0.05)
            with self.lock:
                buf = bytearray()
                index = len(self.conns)
                self.conns.append(buf)
                self.socks.append(c)
            t = threading.Thread(target=self._read, args=(c, buf, index), daemon=True)
            self.threads.append(t)
            t.start()

    def _read(self, c, buf, index):
        try:
            while not self.stopping.is_set():
                try:
                    data = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    buf += data
                    n = len(buf)
                if self.reset_after is not None and index == 0 and n >= self.reset_after:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
        finally:
            c.close()

    def connections(self):
        with self.lock:
            return [bytes(b) for b in self.conns]

    def data(self):
        return b"".join(self.connections())

    def messages(self):
        """Every whole record of every connection, decoded, in arrival order."""
        out = []
        for conn in self.connections():
            frames, _ = split_frames(conn)
            out.extend(decode_message(body) for _, body in frames)
        return out

    def wait_bytes(self, n):
        return wait_for(lambda: len(self.data()) >= n and self.data(), f"{n} bytes at the sink")

    def wait_messages(self, n):
        return wait_for(lambda: (lambda ms: ms if len(ms) >= n else None)(self.messages()),
                        f"{n} messages at the sink")

    def drop_connections(self):
        """Closes every connection from the sink's side (FIN), keeps listening."""
        with self.lock:
            socks = list(self.socks)
        for c in socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopping.set()
        self.listener.close()
        self.drop_connections()
        for t in self.threads:
            t.join(timeout=DEADLINE)


@pytest.fixture
def sinks():
    made = []

    def make(**kwargs):
        s = Sink(**kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# ------------------------------------------------------------------------------------------
# ferryd with a TcpOutput


class OutFerryd(Ferryd):
    """A ferryd running `config`, with @PORT@ (its input port), @SINK@ (the peer's port)
    and @KEY0@/@KEY1@ replaced. Only the config differs from Ferryd."""

    def __init__(self, tmp_path, config, sink_port):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.out_path = str(tmp_path / "out.jsonl")
        self.config_path = str(tmp_path / "ferry.toml")
        self.stderr_path = str(tmp_path / "stderr.log")
        self.stdout_path = str(tmp_path / "stdout.log")
        text = (config.replace("@PORT@", str(self.port)).replace("@SINK@", str(sink_port))
                .replace("@KEY0@", KEYS["test_0"]).replace("@KEY1@", KEYS["test_1"]))
        with open(self.config_path, "w") as f:
            f.write(text)
        self._stderr = open(self.stderr_path, "wb")
        self._stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([FERRYD, "-c", self.config_path, "--log-level", "debug"],
                                     stdout=self._stdout, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, env=dict(os.environ, TZ="UTC"))
        wait_for(lambda: "ferryd started" in self.stderr() or self.proc.poll() is not None,
                 "ferryd to start")
        if self.proc.poll() is not None:
            self.close()
            pytest.fail(f"ferryd exited at start: {self.stderr()}")

    def out(self):
        return self.stats().get("out", {})

    def wait_out(self, name, at_least):
        return wait_for(lambda: (lambda s: s if s.get(name, 0) >= at_least else None)(self.out()),
                        f"out.{name} >= {at_least}")


@pytest.fixture
def ferry(tmp_path):
    started = []

    def make(config, sink_port):
        sub = tmp_path / f"d{len(started)}"
        sub.mkdir()
        d = OutFerryd(sub, config, sink_port)
        started.append(d)
        return d

    yield make
    for d in started:
        d.close()


FORWARD_TO_HEKA = """
[ferry]
hostname = "ferry-test-host"
shutdown_timeout = "10s"

[in]
type = "ForwardInput"
address = "127.0.0.1:@PORT@"
payload_key = "message"

[out]
type = "TcpOutput"
match = "**"
address = "127.0.0.1:@SINK@"
retry_initial = "20ms"
retry_max = "200ms"
"""


def event_time(sec, nsec):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def fluent_sender(d):
    return sender.FluentSender("app", host="127.0.0.1", port=d.port, nanosecond_precision=True)


# ------------------------------------------------------------------------------------------
# Fluentd events → Heka messages (bridge.md)


def test_forward_events_arrive_as_bridged_heka_messages(ferry, sinks):
    sink = sinks()
    d = ferry(FORWARD_TO_HEKA, sink.port)
    s = fluent_sender(d)
    assert s.emit_with_time("web", event_time(1700000000, 123456789), {
        "msg": "hello", "n": 42, "neg": -1, "f": 1.5, "ok": True, "raw": b"\x00\x1e\x1f",
        "list": [1, 2, 3], "tags": ["a", "b"], "nested": {"a": [1, None]}, "mixed": [1, "x"],
        "none": None, "empty": []})
    assert s.emit_with_time("hdr", 1700000001, {
        "Uuid": UUID_TEXT, "Logger": "mylogger", "Severity": 3, "Payload": "pay",
        "EnvVersion": "0.8", "Pid": 77, "Hostname": "h", "k": "v"})
    assert s.emit_with_time("docker", 1700000002, {"message": "the payload", "x": 1})
    s.close()
    first, second, third = sink.wait_messages(3)

    assert first["type"] == "app.web"
    assert first["timestamp"] == 1700000000123456789
    assert first["logger"] == "in"  # the input's name
    assert first["hostname"] == "ferry-test-host"  # [ferry] hostname
    assert len(first["uuid"]) == 16 and first["uuid"][6] >> 4 == 4
    for absent in ("severity", "payload", "env_version", "pid"):
        assert absent not in first
    assert first["fields"] == [
        {"name": "msg", "value_type": "STRING", "values": ["hello"]},
        {"name": "n", "value_type": "INTEGER", "values": [42]},
        {"name": "neg", "value_type": "INTEGER", "values": [-1]},
        {"name": "f", "value_type": "DOUBLE", "values": [1.5]},
        {"name": "ok", "value_type": "BOOL", "values": [True]},
        {"name": "raw", "value_type": "BYTES", "values": [b"\x00\x1e\x1f"]},
        {"name": "list", "value_type": "INTEGER", "values": [1, 2, 3]},
        {"name": "tags", "value_type": "STRING", "values": ["a", "b"]},
        {"name": "nested", "value_type": "STRING", "representation": "json",
         "values": ['{"a":[1,null]}']},
        {"name": "mixed", "value_type": "STRING", "representation": "json",
         "values": ['[1,"x"]']},
        {"name": "empty", "value_type": "STRING", "values": []},
    ]

    assert second["type"] == "app.hdr"
    assert second["timestamp"] == 1700000001 * 10**9
    assert second["uuid"] == bytes.fromhex(UUID_TEXT.replace("-", ""))
    assert (second["logger"], second["severity"], second["payload"], second["env_version"],
            second["pid"], second["hostname"]) == ("mylogger", 3, "pay", "0.8", 77, "h")
    assert second["fields"] == [{"name": "k", "value_type": "STRING", "values": ["v"]}]

    assert third["payload"] == "the payload"  # payload_key
    assert [f["name"] for f in third["fields"]] == ["x"]
    assert first["uuid"] != third["uuid"]

    # Unsigned headers carry only message_length; counters follow.
    frames, rest = split_frames(sink.data())
    assert rest == 0 and all(set(h) == {1} for h, _ in frames)
    st = d.wait_out("events_out", 3)
    assert st["bytes_out"] == len(sink.data())
    assert st["connects"] == 1 and st["connect_failures"] == 0
    assert st["queued_events"] == 0 and st["queued_bytes"] == 0 and st["dropped_events"] == 0


def test_host_name_is_resolved(ferry, sinks):
    sink = sinks()
    # local_address pins IPv4, so "localhost" resolves to 127.0.0.1 only.
    d = ferry(FORWARD_TO_HEKA.replace('address = "127.0.0.1:@SINK@"',
                                      'address = "localhost:@SINK@"\n'
                                      'local_address = "127.0.0.1:0"'), sink.port)
    s = fluent_sender(d)
    assert s.emit("x", {"k": 1})
    s.close()
    (m,) = sink.wait_messages(1)
    assert m["type"] == "app.x"
    assert d.out()["connects"] == 1


# ------------------------------------------------------------------------------------------
# The relay rule: hekad's TcpOutput captures, byte for byte

RELAY = """
[ferry]
shutdown_timeout = "10s"

[in]
type = "TcpInput"
address = "127.0.0.1:@PORT@"
[in.signer.test_0]
hmac_key = "@KEY0@"
[in.signer.test_1]
hmac_key = "@KEY1@"

[out]
type = "TcpOutput"
message_matcher = "TRUE"
address = "127.0.0.1:@SINK@"
"""


def vector(name):
    with open(os.path.join(HEKA, name + ".bin"), "rb") as f:
        data = f.read()
    with open(os.path.join(HEKA, name + ".json")) as f:
        frames = [json.loads(line) for line in f if line.strip() and not line.startswith("#")]
    return data, frames


def tcp_input_available():
    r = subprocess.run([FERRYD, "--print-option-reference"], capture_output=True,
                       timeout=DEADLINE, stdin=subprocess.DEVNULL)
    return b"TcpInput" in r.stdout


needs_tcp_input = pytest.mark.skipif(not tcp_input_available(),
                                     reason="ferryd has no TcpInput yet")


# (what a Heka client sent into hekad, what hekad's TcpOutput wrote, whether the capture
# ends with the sentinel message the capture tool sent after the vector)
RELAY_CASES = [
    ("go-client-gen-none", "hekad-tcpoutput-none", True),
    ("go-client-gen-md5", "hekad-tcpoutput-md5", True),
    ("go-client-gen-sha1", "hekad-tcpoutput-sha1", True),
    ("go-client-gen-md5-badkey", "hekad-tcpoutput-md5-badkey", True),
    ("go-client-gen-md5-unknown", "hekad-tcpoutput-md5-unknown", True),
    ("stream-garbage-then-7-valid", "hekad-tcpoutput-after-garbage", False),
    ("stream-oversize-then-2-valid", "hekad-tcpoutput-after-oversize", False),
    # What hekad relayed from other clients, relayed again: unchanged.
    ("hekad-tcpoutput-from-heka-node", "hekad-tcpoutput-from-heka-node", False),
    ("hekad-tcpoutput-from-heka-py-tcp", "hekad-tcpoutput-from-heka-py-tcp", False),
    ("hekad-tcpoutput-from-heka-py-udp", "hekad-tcpoutput-from-heka-py-udp", False),
]


@needs_tcp_input
@pytest.mark.parametrize("sent,captured,has_sentinel", RELAY_CASES, ids=[c[0] for c in RELAY_CASES])
def test_relay_emits_hekad_bytes(ferry, sinks, sent, captured, has_sentinel):
    sink = sinks()
    d = ferry(RELAY, sink.port)
    data, _ = vector(sent)
    expected, frames = vector(captured)
    # The sentinel is hekad's last record: sent again here after the vector, it marks the
    # end, so a vector that yields nothing is told from one not relayed yet.
    sentinel = b""
    if has_sentinel:
        last = frames[-1]
        sentinel = expected[last["offset"]:]
        assert len(sentinel) == 3 + last["header_len"] + last["header"]["message_length"]
    without_sentinel = expected[:len(expected) - len(sentinel)]
    c = d.connect()
    c.sendall(data + sentinel)
    c.close()
    got = sink.wait_bytes(len(expected))
    assert got[:len(without_sentinel)] == without_sentinel
    assert got == expected
    st = d.wait_out("events_out", len(frames))
    assert st["events_out"] == len(frames)
    assert st["bytes_out"] == len(expected)


@needs_tcp_input
def test_relay_of_signed_messages_verifies_then_reframes_plain(ferry, sinks):
    """hekad's outputs never sign: the HMAC headers of the client are not forwarded."""
    sink = sinks()
    d = ferry(RELAY, sink.port)
    data, frames = vector("go-client-gen-sha1")
    c = d.connect()
    c.sendall(data)
    c.close()
    out_frames, _ = split_frames(wait_for(
        lambda: (lambda b: b if len(split_frames(b)[0]) >= len(frames) else None)(sink.data()),
        "all relayed records"))
    assert len(out_frames) == len(frames)
    assert all(set(h) == {1} for h, _ in out_frames)
    for (h, body), fr in zip(out_frames, frames):
        start = fr["offset"] + 3 + fr["header_len"]
        assert body == data[start:start + fr["header"]["message_length"]]


# ------------------------------------------------------------------------------------------
# A peer that is down, or drops the connection


def test_peer_down_at_start_then_up(ferry, sinks):
    port = free_port()
    d = ferry(FORWARD_TO_HEKA, port)
    s = fluent_sender(d)
    for i in range(50):
        assert s.emit("queued", {"i": i})
    s.close()
    st = d.wait_out("connect_failures", 2)
    assert st["connects"] == 0
    d.wait_out("queued_events", 50)
    sink = sinks(port=port)
    msgs = sink.wait_messages(50)
    assert [field_map(m)["i"]["values"] for m in msgs] == [[i] for i in range(50)]
    st = d.wait_out("events_out", 50)
    assert st["connects"] == 1
    assert st["connect_failures"] >= 2
    assert st["dropped_events"] == 0 and st["queued_events"] == 0
    assert "cannot connect to 127.0.0.1:" in d.stderr()


def test_peer_closes_connection_then_reconnect(ferry, sinks):
    sink = sinks()
    d = ferry(FORWARD_TO_HEKA, sink.port)
    s = fluent_sender(d)
    for i in range(10):
        assert s.emit("a", {"i": i})
    sink.wait_messages(10)
    sink.drop_connections()
    # ferryd notices the EOF while idle and reconnects after a backoff.
    d.wait_out("disconnects", 1)
    d.wait_out("connects", 2)
    for i in range(10, 20):
        assert s.emit("b", {"i": i})
    s.close()
    msgs = sink.wait_messages(20)
    assert [field_map(m)["i"]["values"][0] for m in msgs] == list(range(20))
    assert len(sink.connections()) == 2
    assert "the peer closed the connection" in d.stderr()


def test_peer_resets_connection_mid_stream(ferry, sinks):
    """A reset while a large backlog is being written: ferryd reconnects and goes on.
    Records the kernel had already taken may be lost (Heka's at-most-once); the stream on
    every connection is whole records up to where it was cut."""
    port = free_port()
    d = ferry(FORWARD_TO_HEKA, port)
    s = fluent_sender(d)
    pad = "x" * 1000
    for i in range(3000):
        assert s.emit("bulk", {"i": i, "pad": pad})
    d.wait_out("queued_events", 3000)  # all queued while the peer is down
    sink = sinks(port=port, reset_after=200_000)
    d.wait_out("disconnects", 1)
    d.wait_out("connects", 2)
    # One more event after the reconnect: it must arrive.
    assert s.emit("last", {"i": 3000})
    s.close()
    wait_for(lambda: any(m.get("type") == "app.last" for m in sink.messages()),
             "the event sent after the reconnect")
    conns = sink.connections()
    assert len(conns) >= 2
    for k, conn in enumerate(conns):
        frames, rest = split_frames(conn)
        assert frames, f"connection {k} carried no whole record"
        if k > 0:
            assert rest == 0
    later = [field_map(decode_message(b))["i"]["values"][0]
             for conn in conns[1:] for _, b in split_frames(conn)[0]]
    assert later == sorted(later) and later[-1] == 3000
    assert d.out()["dropped_events"] == 0


def test_reconnect_after(ferry, sinks):
    sink = sinks()
    d = ferry(FORWARD_TO_HEKA + "reconnect_after = 3\n", sink.port)
    s = fluent_sender(d)
    for i in range(7):
        assert s.emit("r", {"i": i})
    s.close()
    msgs = sink.wait_messages(7)
    assert [field_map(m)["i"]["values"][0] for m in msgs] == list(range(7))
    wait_for(lambda: len(sink.connections()) >= 3, "a third connection")
    # Each connection carries at most 3 messages.
    assert all(len(split_frames(c)[0]) <= 3 for c in sink.connections())
    assert d.out()["connects"] >= 3


def test_queue_bound_drops_oldest(ferry, sinks):
    port = free_port()
    # The buffer in front of TcpOutput holds what waits (its own queue only what is being
    # written, at most a quarter of queue_max_bytes), and drops the oldest of it when full.
    d = ferry(FORWARD_TO_HEKA + 'queue_max_bytes = "2KiB"\n'
              '[out.buffer]\nmemory_limit = "2KiB"\nfull_action = "drop_oldest"\n', port)
    s = fluent_sender(d)
    for i in range(40):
        assert s.emit("q", {"i": i, "pad": "p" * 100})
    s.close()
    st = wait_for(lambda: (lambda o: o if o.get("buffer_dropped_oldest_events", 0)
                           + o.get("buffer_queued_events", 0) + o.get("queued_events", 0)
                           >= 40 and o.get("buffer_dropped_oldest_events", 0) > 0 else None)(
                               d.out()), "every event queued or dropped")
    assert st["buffer_queued_bytes"] <= 2048
    assert st["queued_bytes"] <= 2048 // 4 + 300  # one message over a quarter at most
    dropped = st["buffer_dropped_oldest_events"]
    kept = 40 - dropped
    sink = sinks(port=port)
    msgs = sink.wait_messages(kept)
    got = [field_map(m)["i"]["values"][0] for m in msgs]
    # What TcpOutput already held (the oldest) and the newest survive, in order; the
    # dropped ones are one run in between.
    head = next(i for i, v in enumerate(got) if v != i)
    assert got == list(range(head)) + list(range(head + dropped, 40))
    assert d.wait_out("events_out", kept)["dropped_events"] == 0
    assert "output queue full" in d.stderr()


def test_stalled_peer_keeps_memory_bounded(ferry):
    """A peer that connects but never reads: the kernel buffers fill, then the queue, then
    the oldest are dropped; the stop is bounded by shutdown_timeout."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive buffer (inherited by the connection), so the kernel cannot absorb
    # the whole load by growing it; the handshake completes in the backlog and nothing
    # is ever read.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    try:
        d = ferry(FORWARD_TO_HEKA.replace('shutdown_timeout = "10s"', 'shutdown_timeout = "1s"')
                  + 'queue_max_bytes = "1MiB"\n'
                  + '[out.buffer]\nmemory_limit = "1MiB"\nfull_action = "drop_oldest"\n',
                  listener.getsockname()[1])
        s = fluent_sender(d)
        pad = "s" * 1000
        for i in range(20000):
            assert s.emit("stall", {"i": i, "pad": pad})
        s.close()
        st = d.wait_out("buffer_dropped_oldest_events", 1)
        assert d.out()["connects"] == 1
        # Never more than the bound plus the one batch being admitted, in the buffer and in
        # TcpOutput's own queue (a quarter of queue_max_bytes).
        for _ in range(20):
            o = d.out()
            assert o["buffer_queued_bytes"] <= (1 << 20) + 1200
            assert o["queued_bytes"] <= (1 << 18) + 1200
        st = d.wait_out("buffer_queued_events", 1)  # the newest are never dropped
        assert (st["events_out"] + st["buffer_dropped_oldest_events"] + st["queued_events"]
                + st["buffer_queued_events"] == 20000)
        assert st["dropped_events"] == 0
        assert st["events_out"] < 15000  # the kernel took a few MB at most
        assert d.stop() == 0
        assert "shutdown_timeout reached" in d.stderr()
    finally:
        listener.close()


# ------------------------------------------------------------------------------------------
# Signing


@pytest.mark.parametrize("hash_name,key_id,version", [("md5", "test_0", 0), ("sha1", "test_1", 1)])
def test_signed_headers_verify(ferry, sinks, hash_name, key_id, version):
    sink = sinks()
    config = FORWARD_TO_HEKA + f"""
[out.signer]
name = "test"
hmac_hash = "{hash_name}"
hmac_key = "{KEYS[key_id]}"
version = {version}
"""
    d = ferry(config, sink.port)
    s = fluent_sender(d)
    for i in range(5):
        assert s.emit("signed", {"i": i})
    s.close()
    sink.wait_messages(5)
    frames, rest = split_frames(sink.data())
    assert rest == 0 and len(frames) == 5
    for header, body in frames:
        assert header[1] == len(body)
        assert header[4] == b"test"
        assert header[5] == version
        if hash_name == "sha1":
            assert header[3] == 1
        else:
            assert 3 not in header  # MD5 is the default and not written (heka.md §2.2)
        digest = hmac.new(KEYS[key_id].encode(), body, getattr(hashlib, hash_name)).digest()
        assert header[6] == digest
    # Field order as Heka's Go client writes it: 1, 3, 4, 5, 6.
    raw_header = sink.data()[2:2 + sink.data()[1]]
    assert [f for f, _, _ in parse_pb(raw_header)] == ([1, 3, 4, 5, 6] if hash_name == "sha1"
                                                        else [1, 4, 5, 6])


@needs_tcp_input
def test_signed_output_is_accepted_by_a_verifying_input(ferry, sinks):
    """ferry → ferry: a TcpOutput signing with test_1 into a TcpInput that knows the key;
    the second ferryd's message_signer output receives every message."""
    sink = sinks()
    downstream = ferry(RELAY + 'message_signer = "test"\n', sink.port)
    upstream = ferry(FORWARD_TO_HEKA.replace("@SINK@", str(downstream.port)) + """
[out.signer]
name = "test"
hmac_hash = "sha1"
hmac_key = "@KEY1@"
version = 1
""", 0)
    s = fluent_sender(upstream)
    for i in range(4):
        assert s.emit("chain", {"i": i})
    s.close()
    msgs = sink.wait_messages(4)
    assert [field_map(m)["i"]["values"][0] for m in msgs] == list(range(4))
    assert downstream.stats()["in"].get("bad_signatures", 0) == 0


# ------------------------------------------------------------------------------------------
# Shutdown


def forward_with_ack(d, n):
    """Sends n events in Forward mode with a chunk id and waits for the ack (the output
    has accepted them into its queue)."""
    c = d.connect()
    entries = [[event_time(1700000000, i), {"i": i}] for i in range(n)]
    c.sendall(msgpack.packb(["stop.test", entries, {"chunk": "c1", "size": n}]))
    ack = msgpack.unpackb(recv_exactly(c, len(msgpack.packb({"ack": "c1"}))))
    assert ack == {"ack": "c1"}
    return c


def test_graceful_stop_writes_the_queue(ferry, sinks):
    sink = sinks()
    d = ferry(FORWARD_TO_HEKA, sink.port)
    c = forward_with_ack(d, 500)
    c.close()
    assert d.stop() == 0
    msgs = sink.wait_messages(500)
    assert [field_map(m)["i"]["values"][0] for m in msgs] == list(range(500))


def test_graceful_stop_gives_up_when_the_peer_is_down(ferry):
    d = ferry(FORWARD_TO_HEKA.replace('retry_max = "200ms"', 'retry_max = "1h"'), free_port())
    c = forward_with_ack(d, 10)
    c.close()
    d.wait_out("connect_failures", 1)
    start = time.monotonic()
    assert d.stop() == 0
    # One more attempt, then give up: far sooner than shutdown_timeout (10 s).
    assert time.monotonic() - start < 5
    assert "dropped 10 events not yet sent" in d.stderr()


# ------------------------------------------------------------------------------------------
# Config errors


def check_config(tmp_path, out_options, *extra):
    path = tmp_path / "ferry.toml"
    path.write_text('[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:1"\n\n'
                    '[out]\ntype = "TcpOutput"\nmatch = "**"\n' + out_options)
    return subprocess.run([FERRYD, "-c", str(path), *extra], capture_output=True,
                          timeout=DEADLINE, stdin=subprocess.DEVNULL), str(path)


@pytest.mark.parametrize("options,key,what", [
    ('', "out.address", "required key is missing"),
    ('address = "127.0.0.1"\n', "out.address", "expected host:port"),
    ('address = "127.0.0.1:0"\n', "out.address", "from 1 to 65535"),
    ('address = ":5565"\n', "out.address", "the host is missing"),
    ('address = "::1:5565"\n', "out.address", "needs brackets"),
    ('address = "a b:5565"\n', "out.address", "not a host name"),
    ('address = "h:1"\nlocal_address = "example.com:0"\n', "out.local_address",
     "host names are not resolved"),
    ('address = "h:1"\nuse_framing = false\n', "out.use_framing", "only true is supported"),
    ('address = "h:1"\nuse_tls = true\n', "out.use_tls", "TLS is not supported"),
    ('address = "h:1"\nretry_initial = "5s"\nretry_max = "1s"\n', "out.retry_max",
     "at least retry_initial"),
    ('address = "h:1"\n[out.signer]\nname = "x"\nhmac_key = "k"\nhmac_hash = "sha256"\n',
     "out.signer.hmac_hash", 'expected "md5" or "sha1"'),
    ('address = "h:1"\n[out.signer]\nhmac_key = "k"\n', "out.signer.name", "required"),
    ('address = "h:1"\n[out.signer]\nname = "x"\n', "out.signer.hmac_key", "required"),
    ('address = "h:1"\n[out.signer]\nname = "x"\nhmac_key = "k"\nversion = -1\n',
     "out.signer.version", "integer from 0"),
    ('address = "h:1"\n[out.signer]\nname = "x"\nhmac_key = "k"\nkey = "v"\n',
     "out.signer.key", "unknown key for a signer"),
])
def test_config_errors(tmp_path, options, key, what):
    r, path = check_config(tmp_path, options, "--check-config")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith(f"ferryd: config error: {path}:"), err
    assert f"key '{key}'" in err and what in err, err


def test_encoder_must_be_protobuf(tmp_path):
    # A table name, even one defined further down, is resolved once the file is loaded.
    for options, what in [('address = "127.0.0.1:1"\nencoder = "PayloadEncoder"\n',
                           "not defined in the config"),
                          ('address = "127.0.0.1:1"\nencoder = "dec"\n\n[dec]\n'
                           'type = "ProtobufDecoder"\n', "is a ProtobufDecoder")]:
        r, path = check_config(tmp_path, options, "--check-config")
        assert r.returncode == 1
        err = r.stderr.decode()
        assert err.startswith(f"ferryd: config error: {path}:"), err
        assert "key 'out.encoder'" in err and what in err, err
    r, _ = check_config(tmp_path, 'address = "127.0.0.1:1"\nencoder = "enc"\n\n[enc]\n'
                        'type = "ProtobufEncoder"\n', "--check-config")
    assert r.returncode == 0, r.stderr


def test_encoder_table_and_hekad_keys_are_accepted(tmp_path, ferry, sinks):
    sink = sinks()
    d = ferry(FORWARD_TO_HEKA + 'encoder = "enc"\nuse_buffering = true\nkeep_alive = true\n'
              'keep_alive_period = 30\n\n[enc]\ntype = "ProtobufEncoder"\n', sink.port)
    s = fluent_sender(d)
    assert s.emit("e", {"k": 1})
    s.close()
    sink.wait_messages(1)
    assert "no disk buffer for TcpOutput yet" in d.stderr()


def test_send_timeout_reconnects_a_stalled_peer_then_delivers_everything(ferry, sinks):
    """A peer that accepts connections and never reads: with send_timeout = "1s" a write
    that cannot finish closes the connection (`send_timeouts`) and ferryd reconnects; once a
    reading peer takes the port, every event arrives. What a closed connection's kernel had
    already taken is still delivered when the stalled sockets are finally read (a closed
    socket's unsent data outlives it), so the union of both peers must be every event."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Inherited by the accepted connections, so the sink can later bind the same port.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    port = listener.getsockname()[1]
    accepted = []
    close_after_next = threading.Event()

    def accept_loop():
        # Accepts and never reads. Once asked, closes the listener right after the next
        # accept: ferryd connects again only after a send_timeout, so no connection is
        # left in the backlog to be reset (which would lose what its kernel took).
        while True:
            try:
                c, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepted.append(c)
            if close_after_next.is_set():
                listener.close()
                return

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    n = 4000
    pad = "t" * 5000  # 20 MB in all: far more than the kernel buffers of a few connections
    try:
        d = ferry(FORWARD_TO_HEKA + 'send_timeout = "1s"\n', port)
        s = fluent_sender(d)
        for i in range(n):
            assert s.emit("st", {"i": i, "pad": pad})
        s.close()
        d.wait_out("send_timeouts", 1)
        st = d.wait_out("connects", 2)
        assert st["send_timeouts"] >= 1 and st["connects"] >= 2
        err = d.stderr()
        assert "did not complete within send_timeout (1000 ms)" in err
        assert f"127.0.0.1:{port}" in err
        # Stop accepting after the next connection; it stalls and times out as well, and the
        # attempt after it is refused: no connection to the stalled peer is open any more.
        timeouts = st["send_timeouts"]
        close_after_next.set()
        acceptor.join(timeout=DEADLINE)
        assert not acceptor.is_alive()
        d.wait_out("send_timeouts", timeouts + 1)
        d.wait_out("connect_failures", 1)
        assert d.out()["events_out"] < n  # it did stall
        sink = sinks(port=port)
        # Read the stalled connections to their end (each was closed by ferryd).
        stalled = []
        end = time.monotonic() + DEADLINE
        for c in accepted:
            c.settimeout(0.2)
            buf = bytearray()
            while time.monotonic() < end:
                try:
                    data = c.recv(1 << 20)
                except socket.timeout:
                    continue
                if not data:
                    break
                buf += data
            stalled.append(bytes(buf))

        def ids(conns):
            return {field_map(decode_message(body))["i"]["values"][0]
                    for conn in conns for _, body in split_frames(conn)[0]}

        early = ids(stalled)
        wait_for(lambda: len(early | ids(sink.connections())) >= n and sink.connections(),
                 "every event at the peers")
        assert early | ids(sink.connections()) == set(range(n))
        assert ids(sink.connections())  # the reading peer got the rest
        st = d.wait_out("events_out", n)
        assert st["dropped_events"] == 0 and st["queued_events"] == 0
    finally:
        listener.close()
        for c in accepted:
            c.close()
