# Bad bytes lose nothing else: each kind of hostile or broken input on one connection (B)
# either closes B (framing errors) or skips just that request (decode errors), moves its
# counter, and every good event on B before it and on a second connection (A) arrives.
import gzip
import random
import socket
import struct
import time

import msgpack
import pytest

from conftest import DEADLINE, wait_closed, wait_for

BASE_SEC = 1700000000

# Counters that must stay at 0 unless a case says otherwise.
CHECKED = ("parse_errors", "frames_too_large", "frames_decompressed_too_large",
           "frames_bad_compression", "frames_skipped", "frames_tag_too_long",
           "frames_too_many_entries", "connections_closed_on_error", "ignored_roots",
           "heartbeats_tcp", "invalid_entries", "acks_withheld", "connections_idle_closed",
           "connections_rejected")


def event_time(sec, nsec=0):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def message(tag, sec, record, chunk=None):
    req = [tag, event_time(sec, 123), record]
    if chunk is not None:
        req.append({"chunk": chunk})
    return msgpack.packb(req)


def line(tag, sec, record):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return {"tag": tag, "time": stamp + ".000000123Z", "record": record}


class Client:
    """A connection plus the acks it has read so far."""

    def __init__(self, d):
        self.sock = d.connect()
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, data):
        self.sock.sendall(data)

    def send_tolerant(self, data):
        """Sends what the server still takes; a server that closed on bad bytes resets us."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def acks(self, n, timeout=DEADLINE):
        """Reads n replies (or fewer if the server closes) within the deadline."""
        out = []
        end = time.monotonic() + timeout
        while len(out) < n:
            for obj in self.unpacker:
                out.append(obj)
            if len(out) >= n:
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            self.unpacker.feed(data)
        return out

    def close(self):
        self.sock.close()


def random_objects(data):
    """The complete msgpack objects before the first invalid byte of `data`, decoded by an
    independent decoder (python-msgpack), and whether it stopped on an invalid byte."""
    u = msgpack.Unpacker(raw=True, strict_map_key=False, ext_hook=lambda code, d: ("ext", code))
    u.feed(data)
    objs = []
    try:
        for o in u:
            objs.append(o)
    except msgpack.FormatError:
        return objs, True
    return objs, False


def c1_then_random():
    return b"\xc1" + random.Random(1).randbytes(1023)


def seeded_random():
    return random.Random(0).randbytes(4096)


def truncated():
    frame = message("bad.truncated", BASE_SEC, {"never": "arrives", "pad": "x" * 100})
    return frame[: len(frame) - 7]


def oversized():
    # A bin32 that declares 1 MiB, followed by its bytes: over max_frame_size = 4KiB.
    return b"\xc6" + struct.pack(">I", 1 << 20) + bytes(1 << 20)


def gzip_bomb():
    payload = gzip.compress(bytes(10 * 1024 * 1024))
    return msgpack.packb(["bad.bomb", payload, {"compressed": "gzip", "chunk": "bomb"}],
                         use_bin_type=True)


def too_deep():
    return b"\x91" * 200 + b"\xc0"


def bad_gzip():
    # gzip magic and header, then bytes that are not a deflate stream.
    payload = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + bytes(range(7, 200))
    return msgpack.packb(["bad.gzip", payload, {"compressed": "gzip", "chunk": "badgz"}],
                         use_bin_type=True)


def zstd():
    payload = b"\x28\xb5\x2f\xfd" + bytes(40)
    return msgpack.packb(["bad.zstd", payload, {"compressed": "zstd", "chunk": "zstd"}],
                         use_bin_type=True)


def tag_too_long():
    return message("x" * 9, BASE_SEC, {"tag": "too long"}, chunk="tag9")


def too_many_entries():
    entries = [[event_time(BASE_SEC + k), {"k": k}] for k in range(11)]
    return msgpack.packb(["bad.many", entries, {"chunk": "many11"}])


# name: (input_options, payload builder, fate of B, counters that move)
#   fate "server": the server closes B; "client": B half-closes and the server follows;
#   "open": the request is skipped and B keeps working.
CASES = {
    "invalid_byte_c1": ("", c1_then_random, "server",
                        {"parse_errors": 1, "connections_closed_on_error": 1}),
    "random_seed_0": ("", seeded_random, "server", None),  # computed from the bytes
    "truncated_then_close": ("", truncated, "client", {}),
    "over_max_frame_size": ('max_frame_size = "4KiB"', oversized, "server",
                            {"frames_too_large": 1, "connections_closed_on_error": 1}),
    "gzip_bomb": ('max_decompressed_size = "64KiB"', gzip_bomb, "open",
                  {"frames_skipped": 1, "frames_decompressed_too_large": 1}),
    "too_deep": ("max_nesting_depth = 16", too_deep, "server",
                 {"parse_errors": 1, "connections_closed_on_error": 1}),
    "bad_gzip": ("", bad_gzip, "open", {"frames_skipped": 1, "frames_bad_compression": 1}),
    "zstd": ("", zstd, "open", {"frames_skipped": 1, "frames_bad_compression": 1}),
    "tag_too_long": ("max_tag_length = 8", tag_too_long, "open",
                     {"frames_skipped": 1, "frames_tag_too_long": 1}),
    "too_many_entries": ("max_entries_per_frame = 10", too_many_entries, "open",
                         {"frames_skipped": 1, "frames_too_many_entries": 1}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_bytes_lose_nothing_else(ferryd_factory, case):
    options, build, fate, moved = CASES[case]
    bad = build()
    extra_frames = 0  # complete requests inside the bad bytes (each counts in `frames`)
    if moved is None:
        objs, stopped_on_invalid = random_objects(bad)
        # The fixed seed's bytes: scalars and ext values, then an invalid byte (0xc1).
        assert stopped_on_invalid and objs and not any(isinstance(o, list) for o in objs)
        extra_frames = len(objs)
        moved = {"parse_errors": 1, "connections_closed_on_error": 1,
                 "ignored_roots": sum(1 for o in objs if o is not None),
                 "heartbeats_tcp": sum(1 for o in objs if o is None)}
    elif fate == "open":
        extra_frames = 1

    d = ferryd_factory(input_options=options)
    a = Client(d)
    b = Client(d)
    want_a, want_b = [], []

    def send_a(phase, count):
        for k in range(count):
            rec = {"conn": "a", "phase": phase, "n": k}
            sec = BASE_SEC + len(want_a)
            a.send(message("good.a", sec, rec))
            want_a.append(line("good.a", sec, rec))

    send_a("before", 5)
    for k in range(3):
        rec = {"conn": "b", "phase": "before", "n": k}
        b.send(message("good.b", BASE_SEC + k, rec))
        want_b.append(line("good.b", BASE_SEC + k, rec))

    half = max(1, len(bad) // 2)
    b.send_tolerant(bad[:half])
    send_a("during", 5)
    b.send_tolerant(bad[half:])

    if fate == "server":
        assert wait_closed(b.sock), "the server should close B after bad framing"
    elif fate == "client":
        b.sock.shutdown(socket.SHUT_WR)
        assert wait_closed(b.sock), "the server should close B after B's EOF"
    else:
        rec = {"conn": "b", "phase": "after", "n": 0}
        b.send(message("good.b", BASE_SEC + 10, rec, chunk="b-after"))
        want_b.append(line("good.b", BASE_SEC + 10, rec))
        # The skipped request gets no ack: the first reply on B is the good one's.
        assert b.acks(1) == [{"ack": "b-after"}]

    send_a("after", 5)
    rec = {"conn": "a", "phase": "done"}
    sec = BASE_SEC + len(want_a)
    a.send(message("good.a", sec, rec, chunk="a-done"))
    want_a.append(line("good.a", sec, rec))
    # Acks come after the write: once A's last ack is here, everything routed is written.
    assert a.acks(1) == [{"ack": "a-done"}]

    lines = d.wait_lines(len(want_a) + len(want_b))
    assert [l for l in lines if l["tag"] == "good.a"] == want_a
    assert [l for l in lines if l["tag"] == "good.b"] == want_b
    assert len(lines) == len(want_a) + len(want_b)

    stats = d.stats()["in"]
    for name in CHECKED:
        assert stats.get(name, 0) == moved.get(name, 0), name
    assert stats["frames"] == len(want_a) + 3 + extra_frames + (1 if fate == "open" else 0)
    assert stats["events"] == len(want_a) + len(want_b)
    assert stats["connections_accepted"] == 2

    # The daemon is still up and a new connection works.
    assert d.proc.poll() is None
    c = Client(d)
    c.send(message("good.c", BASE_SEC, {"conn": "c"}, chunk="c1"))
    assert c.acks(1) == [{"ack": "c1"}]
    assert d.wait_lines(len(lines) + 1)[-1] == line("good.c", BASE_SEC, {"conn": "c"})
    a.close()
    b.close()
    c.close()
    assert d.stop() == 0


def test_bad_json_closes_only_that_connection(ferryd):
    # A JSON connection (first byte `[`) that turns into garbage is closed like msgpack.
    a = Client(ferryd)
    a.send(message("good.a", BASE_SEC, {"n": 0}, chunk="a0"))
    assert a.acks(1) == [{"ack": "a0"}]
    b = ferryd.connect()
    b.sendall(b'["json.b", %d, {"n": 1}]\n["json.b", %d, {"n": 2}] }}}' % (BASE_SEC, BASE_SEC))
    assert wait_closed(b)
    a.send(message("good.a", BASE_SEC, {"n": 3}, chunk="a3"))
    assert a.acks(1) == [{"ack": "a3"}]
    lines = ferryd.wait_lines(4)
    assert sorted((l["tag"], l["record"]["n"]) for l in lines) == [
        ("good.a", 0), ("good.a", 3), ("json.b", 1), ("json.b", 2)]
    stats = ferryd.stats()["in"]
    assert stats["parse_errors"] == 1
    assert stats["connections_closed_on_error"] == 1
    assert stats["json_connections"] == 1
    assert ferryd.stop() == 0


def test_many_bad_connections_in_a_row(ferryd):
    # 30 connections each sending an invalid byte: all closed, all counted, still serving.
    socks = []
    for k in range(30):
        s = ferryd.connect()
        s.sendall(message("good.bad", BASE_SEC, {"n": k}) + b"\xc1")
        socks.append(s)
    for s in socks:
        assert wait_closed(s)
        s.close()
    lines = ferryd.wait_lines(30)
    assert sorted(l["record"]["n"] for l in lines) == list(range(30))
    stats = ferryd.stats()["in"]
    assert stats["parse_errors"] == 30
    assert stats["connections_closed_on_error"] == 30
    c = Client(ferryd)
    c.send(message("good.c", BASE_SEC, {"n": 99}, chunk="c"))
    assert c.acks(1) == [{"ack": "c"}]
    c.close()
    assert ferryd.stop() == 0


def test_client_closing_before_its_acks_does_not_kill_ferryd(ferryd):
    # A client asks for acks on 50 requests and closes at once, before reading them.
    s = ferryd.connect()
    s.sendall(b"".join(message("gone", BASE_SEC, {"n": k}, chunk="c%d" % k)
                       for k in range(50)))
    s.close()
    # Wait until ferryd has dealt with that connection: all 50 events written.
    wait_for(lambda: len(ferryd.lines()) >= 50 or ferryd.proc.poll() is not None,
             "50 events or ferryd's exit")
    try:
        c = Client(ferryd)
        c.send(message("after", BASE_SEC, {"n": 50}, chunk="after"))
        ok = c.acks(1) == [{"ack": "after"}]
    except OSError:
        ok = False
    assert ferryd.proc.poll() is None, f"ferryd died with {ferryd.proc.returncode}"
    assert ok
    assert ferryd.stop() == 0
