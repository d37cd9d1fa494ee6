# Every ForwardInput limit, crossed by exactly one unit: max_frame_size, max_decompressed_size,
# max_entries_per_frame, max_tag_length, max_connections, idle_timeout, max_nesting_depth.
# At the limit the request passes (and is acked); one over, its counter moves and nothing else.
import gzip
import json
import socket
import struct
import time

import msgpack
import pytest

from conftest import DEADLINE, wait_closed

SEC = 1700000000
STAMP = "2023-11-14T22:13:20.000000000Z"  # SEC with nsec 0, as FileOutput writes it


def event_time(sec=SEC, nsec=0):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def message(tag, record, chunk=None):
    req = [tag, event_time(), record]
    if chunk is not None:
        req.append({"chunk": chunk})
    return msgpack.packb(req)


def line(tag, record):
    return {"tag": tag, "time": STAMP, "record": record}


def padded(total, build):
    """build(pad) packs a request carrying pad; returns (bytes, pad) of exactly `total` bytes.
    Pads between 256 and 65535 bytes keep the str16 header, so size grows one for one."""
    base = len(build("x" * 300)) - 300
    pad = "x" * (total - base)
    data = build(pad)
    assert 256 <= len(pad) <= 65535 and len(data) == total
    return data, pad


class Client:
    def __init__(self, d):
        self.sock = d.connect()
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, data):
        self.sock.sendall(data)

    def replies(self, n, timeout=DEADLINE):
        """Up to n replies, fewer if the server closes or the deadline passes."""
        out = []
        end = time.monotonic() + timeout
        while True:
            for obj in self.unpacker:
                out.append(obj)
            left = end - time.monotonic()
            if len(out) >= n or left <= 0:
                return out
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return out
            except ConnectionResetError:
                return out
            if not data:
                return out
            self.unpacker.feed(data)

    def close(self):
        self.sock.close()


def input_stats(d):
    return d.stats()["in"]


# ---- max_frame_size ---------------------------------------------------------------------

@pytest.mark.parametrize("pieces", [False, True], ids=["whole", "in_pieces"])
def test_max_frame_size_exact(ferryd_factory, pieces):
    d = ferryd_factory(input_options='max_frame_size = "4KiB"')
    at, pad_at = padded(4096, lambda p: message("lim.at", {"p": p}, chunk="at"))
    over, _ = padded(4097, lambda p: message("lim.over", {"p": p}, chunk="over"))

    a = Client(d)
    if pieces:
        # 4000 bytes buffered and waiting (under the limit), then the rest.
        a.send(at[:4000])
        d.wait_counter("bytes", 4000)
        a.send(at[4000:])
    else:
        a.send(at)
    assert a.replies(1) == [{"ack": "at"}]
    assert d.wait_lines(1) == [line("lim.at", {"p": pad_at})]
    assert input_stats(d)["frames_too_large"] == 0

    b = Client(d)
    if pieces:
        # Exactly 4096 bytes of a 4097-byte request may wait; the last byte closes.
        b.send(over[:4096])
        d.wait_counter("bytes", 4096 + 4096)
        assert input_stats(d)["frames_too_large"] == 0
        b.send(over[4096:])
    else:
        b.send(over)
    assert wait_closed(b.sock)
    stats = input_stats(d)
    assert stats["frames_too_large"] == 1
    assert stats["connections_closed_on_error"] == 1
    assert stats["parse_errors"] == 0

    a.send(message("lim.after", {"n": 1}, chunk="after"))
    assert a.replies(1) == [{"ack": "after"}]
    assert d.wait_lines(2)[1:] == [line("lim.after", {"n": 1})]
    assert len(d.lines()) == 2
    assert d.stop() == 0


# ---- max_decompressed_size --------------------------------------------------------------

def packed_entry_of(total):
    """One packed entry [EventTime, {"p": pad}] of exactly `total` bytes."""
    return padded(total, lambda p: msgpack.packb([event_time(), {"p": p}]))


@pytest.mark.parametrize("members", [1, 2])
def test_max_decompressed_size_exact(ferryd_factory, members):
    limit = 64 * 1024
    d = ferryd_factory(input_options='max_decompressed_size = "64KiB"')

    def compressed(plain):
        # Several gzip members back to back, as Fluentd writes them: the limit is on the sum.
        cut = len(plain) // members
        parts = [plain[k * cut:(k + 1) * cut if k < members - 1 else len(plain)]
                 for k in range(members)]
        return b"".join(gzip.compress(p) for p in parts)

    def request(tag, plain, chunk):
        return msgpack.packb([tag, compressed(plain), {"compressed": "gzip", "chunk": chunk}],
                             use_bin_type=True)

    at, pad_at = packed_entry_of(limit)
    over, _ = packed_entry_of(limit + 1)
    c = Client(d)
    c.send(request("gz.at", at, "at"))
    assert c.replies(1) == [{"ack": "at"}]
    assert d.wait_lines(1) == [line("gz.at", {"p": pad_at})]

    c.send(request("gz.over", over, "over"))
    c.send(message("gz.next", {"n": 1}, chunk="next"))
    # The request over the limit is skipped without an ack; the connection stays.
    assert c.replies(1) == [{"ack": "next"}]
    assert d.wait_lines(2)[1:] == [line("gz.next", {"n": 1})]
    assert len(d.lines()) == 2
    stats = input_stats(d)
    assert stats["frames_decompressed_too_large"] == 1
    assert stats["frames_skipped"] == 1
    assert stats["connections_closed_on_error"] == 0
    assert stats["acks_sent"] == 2
    assert d.stop() == 0


# ---- max_entries_per_frame --------------------------------------------------------------

def entries_request(mode, tag, n, chunk):
    entries = [[event_time(), {"k": k}] for k in range(n)]
    if mode == "Forward":
        return msgpack.packb([tag, entries, {"chunk": chunk}])
    packed = b"".join(msgpack.packb(e) for e in entries)
    if mode == "CompressedPackedForward":
        return msgpack.packb([tag, gzip.compress(packed), {"compressed": "gzip", "chunk": chunk}],
                             use_bin_type=True)
    return msgpack.packb([tag, packed, {"chunk": chunk, "size": n}], use_bin_type=True)


@pytest.mark.parametrize("mode", ["Forward", "PackedForward", "CompressedPackedForward"])
def test_max_entries_per_frame_exact(ferryd_factory, mode):
    d = ferryd_factory(input_options="max_entries_per_frame = 10")
    c = Client(d)
    c.send(entries_request(mode, "ten", 10, "ten"))
    assert c.replies(1) == [{"ack": "ten"}]
    assert d.wait_lines(10) == [line("ten", {"k": k}) for k in range(10)]

    c.send(entries_request(mode, "eleven", 11, "eleven"))
    c.send(entries_request(mode, "one", 1, "one"))
    assert c.replies(1) == [{"ack": "one"}]  # none for the 11-entry request
    lines = d.wait_lines(11)
    assert lines[10:] == [line("one", {"k": 0})]
    assert len(lines) == 11
    stats = input_stats(d)
    assert stats["frames_too_many_entries"] == 1
    assert stats["frames_skipped"] == 1
    assert stats["events"] == 11
    assert stats["connections_closed_on_error"] == 0
    assert d.stop() == 0


# ---- max_tag_length ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["Message", "Forward"])
def test_max_tag_length_exact(ferryd_factory, mode):
    d = ferryd_factory(input_options="max_tag_length = 8")

    def request(tag, chunk):
        if mode == "Message":
            return message(tag, {"t": tag}, chunk=chunk)
        return msgpack.packb([tag, [[event_time(), {"t": tag}]], {"chunk": chunk}])

    c = Client(d)
    c.send(request("abcdefgh", "eight"))
    assert c.replies(1) == [{"ack": "eight"}]
    c.send(request("abcdefghi", "nine"))
    c.send(request("ok", "ok"))
    assert c.replies(1) == [{"ack": "ok"}]
    lines = d.wait_lines(2)
    assert lines == [line("abcdefgh", {"t": "abcdefgh"}), line("ok", {"t": "ok"})]
    stats = input_stats(d)
    assert stats["frames_tag_too_long"] == 1
    assert stats["frames_skipped"] == 1
    assert stats["events"] == 2
    assert d.stop() == 0


# ---- max_connections --------------------------------------------------------------------

def test_max_connections_exact(ferryd_factory):
    d = ferryd_factory(input_options="max_connections = 2")
    first, second = Client(d), Client(d)
    for k, c in enumerate((first, second)):
        c.send(message("conn", {"n": k}, chunk="c%d" % k))
        assert c.replies(1) == [{"ack": "c%d" % k}]

    # One more is not accepted and not closed: it waits (the kernel completed its handshake,
    # so its bytes are buffered there) until a slot frees.
    third = Client(d)
    third.send(message("conn", {"n": 3}, chunk="c3"))
    d.wait_counter("accept_paused", 1)
    third.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        third.sock.recv(1)
    third.sock.setblocking(True)
    stats = input_stats(d)
    assert stats["connections_rejected"] == 0
    assert stats["connections_accepted"] == 2

    # Free a slot: once the server has closed `first` (we see its EOF), `third` is served.
    first.sock.shutdown(socket.SHUT_WR)
    assert wait_closed(first.sock)
    first.close()
    assert third.replies(1) == [{"ack": "c3"}]
    second.send(message("conn", {"n": 2}, chunk="c2"))
    assert second.replies(1) == [{"ack": "c2"}]
    assert sorted(l["record"]["n"] for l in d.wait_lines(4)) == [0, 1, 2, 3]
    stats = input_stats(d)
    assert stats["connections_rejected"] == 0
    assert stats["connections_accepted"] == 3
    assert stats["accept_paused"] == 1
    assert d.stop() == 0


# ---- idle_timeout -----------------------------------------------------------------------

def test_idle_connection_closed(ferryd_factory):
    d = ferryd_factory(input_options='idle_timeout = "200ms"')
    idle = d.connect()
    started = time.monotonic()
    assert wait_closed(idle, timeout=DEADLINE)
    # Not before the timeout (the clock only bounds it from below).
    assert time.monotonic() - started >= 0.15
    idle.close()
    stats = input_stats(d)
    assert stats["connections_idle_closed"] == 1
    assert stats["connections_closed_on_error"] == 0
    assert d.stop() == 0


def test_busy_connection_not_idle_closed(ferryd_factory):
    d = ferryd_factory(input_options='idle_timeout = "200ms"')
    busy = d.connect()
    sent = 0
    end = time.monotonic() + 1.0
    while time.monotonic() < end and sent < 100:
        busy.sendall(message("busy", {"n": sent}))
        sent += 1
        # Pace at 50 ms, and check on the way that the server has not closed us.
        busy.settimeout(0.05)
        try:
            data = busy.recv(1)
        except socket.timeout:
            data = None
        assert data is None, "the server closed a connection that sent every 50 ms"
    assert sent >= 15
    lines = d.wait_lines(sent)
    assert [l["record"]["n"] for l in lines] == list(range(sent))
    assert input_stats(d)["connections_idle_closed"] == 0
    # Once it stops sending, the same connection is closed as idle.
    assert wait_closed(busy)
    assert input_stats(d)["connections_idle_closed"] == 1
    busy.close()
    assert d.stop() == 0


def test_idle_timeout_zero_never_closes(ferryd_factory):
    d = ferryd_factory(input_options="idle_timeout = 0")
    c = Client(d)
    # Nothing arrives within 600 ms on an idle connection: it stays open.
    c.sock.settimeout(0.6)
    with pytest.raises(socket.timeout):
        c.sock.recv(1)
    c.send(message("late", {"n": 1}, chunk="late"))
    assert c.replies(1) == [{"ack": "late"}]
    assert input_stats(d)["connections_idle_closed"] == 0
    assert d.stop() == 0


# ---- max_nesting_depth ------------------------------------------------------------------

def nested(levels):
    """`levels` nested non-empty arrays: [[...[1]...]]."""
    v = [1]
    for _ in range(levels - 1):
        v = [v]
    return v


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_max_nesting_depth_exact(ferryd_factory, encoding):
    # Message [tag, time, {"d": arrays}]: the request array and the record map are 2
    # levels, so 14 arrays make exactly 16, 15 make 17.
    d = ferryd_factory(input_options="max_nesting_depth = 16")

    def request(tag, levels):
        rec = {"d": nested(levels)}
        if encoding == "msgpack":
            return msgpack.packb([tag, SEC, rec]), rec
        return json.dumps([tag, SEC, rec]).encode(), rec

    ok, rec = request("deep.16", 14)
    a = d.connect()
    a.sendall(ok)
    assert d.wait_lines(1) == [line("deep.16", rec)]

    bad, _ = request("deep.17", 15)
    b = d.connect()
    b.sendall(bad)
    assert wait_closed(b)
    stats = input_stats(d)
    assert stats["parse_errors"] == 1
    assert stats["connections_closed_on_error"] == 1
    # A's connection is fine.
    again, rec2 = request("deep.again", 3)
    a.sendall(again)
    assert d.wait_lines(2)[1:] == [line("deep.again", rec2)]
    assert len(d.lines()) == 2
    a.close()
    b.close()
    assert d.stop() == 0


def test_too_deep_packed_entry_loses_no_acked_event(ferryd_factory):
    d = ferryd_factory(input_options="max_nesting_depth = 16")
    entries = [msgpack.packb([event_time(), {"n": 1}]),
               msgpack.packb([event_time(), {"n": 2, "d": nested(20)}]),
               msgpack.packb([event_time(), {"n": 3}])]
    c = Client(d)
    c.send(msgpack.packb(["packed", b"".join(entries), {"chunk": "p"}], use_bin_type=True))
    c.send(message("next", {"n": 4}, chunk="next"))
    # Two replies, or fewer if ferryd closes the connection instead (also acceptable).
    acked = {"ack": "p"} in c.replies(2)
    # A sentinel on a fresh connection: once acked, everything routed before is written.
    s = Client(d)
    s.send(message("sentinel", {"n": 5}, chunk="s"))
    assert s.replies(1) == [{"ack": "s"}]
    arrived = sorted(l["record"]["n"] for l in d.lines())
    # Entry 2 may be dropped as invalid; but if the request was acked, entry 3 (valid)
    # must have been written too.
    if acked:
        assert 3 in arrived, f"acked, yet only {arrived} arrived"
    assert d.stop() == 0
