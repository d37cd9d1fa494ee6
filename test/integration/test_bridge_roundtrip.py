# bridge.md round trips over real sockets through ferryd processes:
#   Fluentd → Heka → Fluentd: forward client → ferryd A (ForwardInput → TcpOutput) →
#     ferryd B (TcpInput → FileOutput): same tag, time (ns) and record, plus the keys
#     bridge.md says appear (Uuid, and Logger/Hostname from A's input), ext → bin.
#   Heka → Fluentd → Heka: Heka capture → ferryd A (TcpInput → ForwardOutput) → ferryd B
#     (ForwardInput → TcpOutput) → sink: the same messages, up to bridge.md's losses.
import json
import os
import socket
import subprocess
import threading

import msgpack
import pytest

from conftest import DEADLINE, FERRYD, VECTORS, free_port, read_json_lines, wait_for


class Daemon:
    """A ferryd running `config` (with {name} placeholders filled by the caller)."""

    def __init__(self, tmp_path, name, config):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.config_path = self.dir / "ferry.toml"
        self.config_path.write_text(config)
        self.stderr_path = self.dir / "stderr.log"
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([FERRYD, "-c", str(self.config_path)], stdout=subprocess.DEVNULL,
                                     stderr=self._err, stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, TZ="UTC"))
        wait_for(lambda: "ferryd started" in self.stderr() or self.proc.poll() is not None,
                 f"{name} to start")
        assert self.proc.poll() is None, self.stderr()

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)
        self._err.close()


@pytest.fixture
def daemons(tmp_path):
    started = []

    def start(name, config):
        d = Daemon(tmp_path, name, config)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


def test_fluentd_to_heka_to_fluentd(tmp_path, daemons):
    b_port, a_port = free_port(), free_port()
    out = str(tmp_path / "b.jsonl")
    daemons("b", f"""
[in]
type = "TcpInput"
address = "127.0.0.1:{b_port}"
[out]
type = "FileOutput"
match = "**"
path = "{out}"
""")
    daemons("a", f"""
[ferry]
hostname = "host-a"
[fwd]
type = "ForwardInput"
address = "127.0.0.1:{a_port}"
[heka]
type = "TcpOutput"
message_matcher = "TRUE"
address = "127.0.0.1:{b_port}"
""")
    records = [
        {"msg": "plain", "n": 1, "neg": -5, "f": 2.5, "ok": True, "none": None},
        {"nested": {"a": {"b": [1, "x", None]}}, "mixed": [1, "two", 3.5], "ints": [1, 2, 3],
         "strs": ["a", "b"], "empty": []},
        {"raw": b"\x00\x01bin", "big": 2**64 - 1, "Severity": 3, "Payload": "p",
         "Logger": "mylogger", "Hostname": "h1", "Pid": 77, "EnvVersion": "1.0"},
        {"ext": msgpack.ExtType(5, b"xyz"), "Uuid": "0f8fad5b-d9cb-469f-a165-70867728950e"},
    ]
    s = socket.create_connection(("127.0.0.1", a_port), timeout=DEADLINE)
    for k, rec in enumerate(records):
        t = msgpack.ExtType(0, (1700000000 + k).to_bytes(4, "big") + (123456789).to_bytes(4, "big"))
        s.sendall(msgpack.packb([f"rt.tag{k}", t, rec], use_bin_type=True))
    s.close()
    wait_for(lambda: len(read_json_lines(out)) == len(records), "every event to come back")
    got = read_json_lines(out)
    for k, (line, rec) in enumerate(zip(got, records)):
        assert line["tag"] == f"rt.tag{k}"
        assert line["time"] == f"2023-11-14T22:13:{20 + k}.123456789Z"
        back = dict(line["record"])
        # bridge.md: a Uuid appears (kept when the record had one); Logger and Hostname
        # come from A's input and host when the record had none.
        if "Uuid" in rec:
            assert back.pop("Uuid") == rec["Uuid"]
        else:
            assert len(back.pop("Uuid")) == 36
        assert back.pop("Logger") == rec.get("Logger", "fwd")
        assert back.pop("Hostname") == rec.get("Hostname", "host-a")
        want = {}
        for key, value in rec.items():
            if key in ("Uuid", "Logger", "Hostname") or value is None:
                continue  # header keys checked above; nil is no Field
            if isinstance(value, bytes):
                value = value.decode("latin-1")  # bin comes back as bin: JSON string
            if isinstance(value, msgpack.ExtType):
                value = value.data.decode()      # ext becomes bin
            if key == "big":
                value = float(value)             # uint64 above INT64_MAX is a DOUBLE
            want[key] = value
        assert back == want, f"event {k}"


def heka_records(data):
    """Splits a Heka stream into its framed records' bodies (simple reader: the streams
    here are well formed)."""
    bodies, i = [], 0
    while i < len(data):
        assert data[i] == 0x1E
        hlen = data[i + 1]
        header = data[i + 2:i + 2 + hlen]
        # message_length is field 1, a varint
        assert header[0] == 0x08
        n, shift, j = 0, 0, 1
        while True:
            b = header[j]
            n |= (b & 0x7F) << shift
            j += 1
            shift += 7
            if b < 0x80:
                break
        start = i + 3 + hlen
        bodies.append(data[start:start + n])
        i = start + n
    return bodies


def join_duplicates(pairs):
    """JSON object hook: a name that occurs twice keeps all its values, joined in order
    into one list, as bridge.md does when a Heka message goes to Fluentd."""
    out = {}
    for key, value in pairs:
        if key in out:
            prev = out[key] if isinstance(out[key], list) else [out[key]]
            out[key] = prev + (value if isinstance(value, list) else [value])
        else:
            out[key] = value
    return out


def match_json(path):
    r = subprocess.run([FERRYD, "--match", "TRUE", str(path)], capture_output=True,
                       timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    return [json.loads(l, object_pairs_hook=join_duplicates) for l in r.stdout.decode().splitlines()]


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(__file__), "..", "..", "src",
                                                    "forward", "forward_output.h")),
                    reason="needs ForwardOutput")
def test_heka_to_fluentd_to_heka(tmp_path, daemons):
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(4)
    sink_port = sink.getsockname()[1]
    received = bytearray()
    done = threading.Event()

    def collect():
        sink.settimeout(DEADLINE)
        try:
            conn, _ = sink.accept()
            conn.settimeout(DEADLINE)
            while not done.is_set():
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                received.extend(chunk)
        except OSError:
            pass

    t = threading.Thread(target=collect, daemon=True)
    t.start()
    a_heka, b_fwd = free_port(), free_port()
    daemons("b", f"""
[fwd]
type = "ForwardInput"
address = "127.0.0.1:{b_fwd}"
[heka]
type = "TcpOutput"
message_matcher = "TRUE"
address = "127.0.0.1:{sink_port}"
""")
    daemons("a", f"""
[in]
type = "TcpInput"
address = "127.0.0.1:{a_heka}"
[fwd]
type = "ForwardOutput"
match = "**"
servers = [{{host = "127.0.0.1", port = {b_fwd}}}]
flush_interval = "100ms"
require_ack_response = true
""")
    original = os.path.join(VECTORS, "heka", "go-client-gen-none.bin")
    with open(original, "rb") as f:
        data = f.read()
    want = match_json(original)
    c = socket.create_connection(("127.0.0.1", a_heka), timeout=DEADLINE)
    c.sendall(data)
    c.close()

    def complete():
        try:
            return len(heka_records(bytes(received))) >= len(want)
        except (AssertionError, IndexError):
            return False

    wait_for(complete, "every message to come back as Heka")
    done.set()
    back_path = tmp_path / "back.bin"
    back_path.write_bytes(bytes(received))
    got = match_json(back_path)
    assert len(got) == len(want)
    # Messages arrive per tag (Type), so compare by Uuid.
    by_uuid = {m["Uuid"]: m for m in got}
    for m in want:
        g = by_uuid[m["Uuid"]]
        if m["Timestamp"] >= 0:
            assert g["Timestamp"] == m["Timestamp"]
        # else: EventTime holds unsigned seconds, so a time before 1970 cannot cross a
        # Fluentd hop (documented in docs/heka.md).
        assert g.get("Type") == (m.get("Type") or "heka")
        for key in ("Payload", "EnvVersion", "Pid", "Hostname", "Severity"):
            if key in m:
                assert g[key] == m[key], key
        # Fields: same names and values in order; a name that occurred twice comes back
        # once with the values joined (bridge.md), which the JSON form already shows.
        assert g["Fields"] == m["Fields"], m["Uuid"]
