# Replays real client captures (python3-fluent-logger, fluent-cat, Fluentd and Fluent Bit
# out_forward) from /work/shared/vectors/forward into ferryd, whole and one byte per send(),
# and checks every tag, time (ns) and record, and the acks, against the capture's own decode.
import codecs
import datetime
import hashlib
import json
import os

import pytest

from conftest import DEADLINE, VECTORS, recv_exactly

FORWARD = os.path.join(VECTORS, "forward")

CAPTURES = [
    "pylogger-eventtime",
    "pylogger-inttime",
    "fluentcat-default",
    "fluentcat-event-time",
    "fluentd-out-ack",
    "fluentd-out-gzip",
    "fluentbit-out-default",
    "fluentbit-out-default-metadata",
    "fluentbit-out-gzip",
    "fluentbit-out-time-as-integer",
]


def _raw_bytes_error(err):
    # ferryd writes each byte of an invalid UTF-8 sequence as \u00XX, i.e. as U+00XX.
    return "".join(chr(b) for b in err.object[err.start:err.end]), err.end


codecs.register_error("ferry-test-bytes-as-latin1", _raw_bytes_error)


def output_value(v):
    """The capture's decoded value as ferryd's JSON output spells it (bin → string)."""
    if isinstance(v, dict):
        if set(v) == {"$bin_hex"}:
            return bytes.fromhex(v["$bin_hex"]).decode("utf-8", "ferry-test-bytes-as-latin1")
        return {k: output_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [output_value(x) for x in v]
    return v


def typed(v):
    """A tree that tells 1, 1.0 and True apart, for exact comparison."""
    if isinstance(v, dict):
        return ("map", [(k, typed(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("array", [typed(x) for x in v])
    return (type(v).__name__, v)


def expected_time(t):
    """The capture's time object → the output's time string, cross-checked against itself."""
    if "event_time" in t:  # v1.5 [EventTime, {metadata}]
        t = t["event_time"]
    ns = t["seconds"] * 1_000_000_000 + t.get("nanoseconds", 0)
    text = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S") + ".%09dZ" % (ns % 10**9)
    assert text == t["utc"], f"capture json disagrees with itself: {t}"
    return text


class Capture:
    def __init__(self, name):
        self.name = name
        with open(os.path.join(FORWARD, name + ".json")) as f:
            self.meta = json.load(f)
        with open(os.path.join(FORWARD, name + ".bin"), "rb") as f:
            self.frames = f.read()
        assert hashlib.sha256(self.frames).hexdigest() == self.meta["files"]["bin"]["sha256"]
        # NAME.client.bin, when present, is every byte of the connection; the data frames
        # of NAME.bin must be in it.
        client = os.path.join(FORWARD, name + ".client.bin")
        self.wire = self.frames
        if os.path.exists(client):
            with open(client, "rb") as f:
                self.wire = f.read()
            assert self.frames in self.wire
        self.messages = self.meta["bin_messages"]
        assert sum(m["len"] for m in self.messages) == len(self.frames)

    def events(self):
        out = []
        for m in self.messages:
            entries = [m] if m["kind"] == "Message" else m["entries"]
            assert len(entries) == m["entry_count"]
            for e in entries:
                out.append({"tag": m["tag"], "time": expected_time(e["time"]),
                            "record": output_value(e["record"])})
        return out

    def chunks(self):
        ids = []
        for m in self.messages:
            chunk = (m.get("option") or {}).get("chunk")
            if chunk is not None:
                assert len(chunk["value"].encode()) == chunk["len"]
                ids.append(chunk["value"])
        return ids

    def server_reply(self):
        path = os.path.join(FORWARD, self.name + ".server.bin")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return f.read()


def ack_for(chunk):
    raw = chunk.encode()
    assert len(raw) < 32
    return b"\x81\xa3ack" + bytes([0xa0 | len(raw)]) + raw


def nothing_pending(sock):
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        data = b""
    finally:
        sock.settimeout(DEADLINE)
    return data


@pytest.mark.parametrize("delivery", ["whole", "bytewise"])
@pytest.mark.parametrize("name", CAPTURES)
def test_replay_capture(ferryd, name, delivery):
    cap = Capture(name)
    expected = cap.events()
    chunks = cap.chunks()
    assert expected, f"{name}: the capture decodes to no events"

    s = ferryd.connect()
    if delivery == "whole":
        s.sendall(cap.wire)
    else:
        for k in range(len(cap.wire)):
            s.sendall(cap.wire[k:k + 1])

    if chunks:
        want = b"".join(ack_for(c) for c in chunks)
        assert recv_exactly(s, len(want)) == want
        reply = cap.server_reply()
        if reply is not None:  # what the capture's server answered, byte for byte
            assert want == reply
    lines = ferryd.wait_lines(len(expected))
    assert [typed(l) for l in lines] == [typed(e) for e in expected]

    ferryd.wait_counter("acks_sent", len(chunks))  # counted when the write completes
    stats = ferryd.stats()["in"]
    assert stats["events"] == len(expected)
    assert stats["frames"] == len(cap.messages)
    assert stats["invalid_entries"] == 0
    assert stats["frames_skipped"] == 0
    assert stats["acks_sent"] == len(chunks)
    assert nothing_pending(s) == b""
    s.close()


def test_captures_with_chunk_ids_are_covered():
    """The ack check above is only as good as the captures: make sure one carries an id."""
    with_ids = {n: Capture(n).chunks() for n in CAPTURES}
    assert with_ids["fluentd-out-ack"] == ["ZhB1YqL4VnhF14nU+kRlrQ==\n"]
    assert [n for n, ids in with_ids.items() if ids] == ["fluentd-out-ack"]
