# Acknowledgements: `{"chunk": id}` in any mode gets exactly one `{"ack": id}` echoing the id
# byte for byte, in request order, only once the events are written; none without a chunk or
# for a skipped frame; half-close, unrouted events and the acks_sent counter.
import fcntl
import gzip
import json
import os
import socket
import struct
import subprocess
import termios

import msgpack
import pytest

from conftest import DEADLINE, FERRYD, Ferryd, free_port, recv_exactly, wait_for


def et(sec, nsec=0):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def str_header(n):
    if n < 32:
        return bytes([0xa0 | n])
    if n < 256:
        return b"\xd9" + bytes([n])
    if n < 65536:
        return b"\xda" + struct.pack(">H", n)
    return b"\xdb" + struct.pack(">I", n)


def ack_for(chunk):
    """The exact reply: fixmap(1) {"ack": <the id's bytes as a msgpack str>}."""
    raw = chunk.encode() if isinstance(chunk, str) else chunk
    return b"\x81\xa3ack" + str_header(len(raw)) + raw


def nothing_pending(sock):
    """Non-blocking read: whatever the server sent that has not been read yet."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        data = b""
    finally:
        sock.settimeout(DEADLINE)
    return data


def read_ack(sock, chunk):
    expected = ack_for(chunk)
    got = recv_exactly(sock, len(expected))
    assert got == expected
    return got


def assert_acks_sent(d, n):
    """acks_sent counts completed writes (the write callback may trail the client's read)."""
    d.wait_counter("acks_sent", n)
    assert d.counter("acks_sent") == n


F_GETPIPE_SZ = 1032  # fcntl.F_GETPIPE_SZ, missing from older Pythons

FLUENTD_ID = "ZhB1YqL4VnhF14nU+kRlrQ==\n"  # 25 bytes: base64 + Ruby's trailing LF
FLUENTBIT_ID = "txUu9lJV1bnijmfRQJgu2A=="   # 24 bytes, no LF

ENTRIES = [[et(1700000000, 1), {"a": 1}], [1700000001, {"a": 2}]]
PACKED = b"".join(pack(e) for e in ENTRIES)


def request(mode, chunk, tag="ack.t"):
    """One request of `mode` carrying {"chunk": chunk} (chunk str → msgpack str, bytes → bin)."""
    if mode == "message":
        return pack([tag, et(1700000000, 1), {"a": 1}, {"chunk": chunk}])
    if mode == "forward":
        return pack([tag, ENTRIES, {"chunk": chunk, "size": 2}])
    if mode == "packed_bin":
        return pack([tag, PACKED, {"chunk": chunk, "size": 2, "compressed": "text"}])
    if mode == "packed_str32":  # exactly as Fluentd's out_forward writes it
        return (b"\x93" + pack(tag) + b"\xdb" + struct.pack(">I", len(PACKED)) + PACKED
                + pack({"size": 2, "compressed": "text", "chunk": chunk}))
    if mode == "gzip":
        return pack([tag, gzip.compress(PACKED), {"chunk": chunk, "compressed": "gzip"}])
    if mode == "map32_option":  # Fluent Bit's option map header
        opt = (b"\xdf" + struct.pack(">I", 3) + pack("chunk") + pack(chunk) + pack("size")
               + pack(2) + pack("fluent_signal") + pack(0))
        return b"\x93" + pack(tag) + pack(ENTRIES) + opt
    raise AssertionError(mode)


EVENTS = {
    "message": 1, "forward": 2, "packed_bin": 2, "packed_str32": 2, "gzip": 2, "map32_option": 2,
}


@pytest.mark.parametrize("chunk", [FLUENTD_ID, FLUENTBIT_ID], ids=["fluentd25", "fluentbit24"])
@pytest.mark.parametrize("mode", sorted(EVENTS))
def test_one_ack_per_chunk_in_every_mode(ferryd, mode, chunk):
    s = ferryd.connect()
    s.sendall(request(mode, chunk))
    read_ack(s, chunk)
    lines = ferryd.lines()  # the ack came after the write: the events are there now
    assert len(lines) == EVENTS[mode]
    assert lines[0] == {"tag": "ack.t", "time": "2023-11-14T22:13:20.000000001Z",
                        "record": {"a": 1}}
    if EVENTS[mode] == 2:
        assert lines[1] == {"tag": "ack.t", "time": "2023-11-14T22:13:21.000000000Z",
                            "record": {"a": 2}}
    assert_acks_sent(ferryd, 1)
    assert nothing_pending(s) == b""  # exactly one reply
    s.close()


@pytest.mark.parametrize("chunk", [
    FLUENTD_ID.encode(),                      # bin with the same bytes
    bytes(range(256)),                        # every byte value, str16 on the way back
    b"\xff\xfe\x00 not utf-8 \n",
    b"",
], ids=["fluentd-as-bin", "all-bytes", "invalid-utf8", "empty"])
def test_ack_echoes_binary_ids_byte_for_byte(ferryd, chunk):
    s = ferryd.connect()
    s.sendall(pack(["bin.t", 1700000000, {"k": "v"}, {"chunk": chunk}]))
    got = read_ack(s, chunk)
    decoded = msgpack.unpackb(got, raw=True)
    assert decoded == {b"ack": chunk}
    assert got[4] != 0xc4  # the id comes back as a str, as Fluentd compares strings
    assert ferryd.lines() == [{"tag": "bin.t", "time": "2023-11-14T22:13:20.000000000Z",
                               "record": {"k": "v"}}]
    assert nothing_pending(s) == b""
    s.close()


def test_pipelined_chunks_are_acked_in_request_order(ferryd):
    modes = sorted(EVENTS)
    chunks = ["chunk-%02d-%s" % (i, "x" * i) for i in range(24)]
    data = b"".join(request(modes[i % len(modes)], c, tag="pipe.%d" % i)
                    for i, c in enumerate(chunks))
    s = ferryd.connect()
    s.sendall(data)
    expected = b"".join(ack_for(c) for c in chunks)
    assert recv_exactly(s, len(expected)) == expected
    lines = ferryd.lines()
    assert len(lines) == sum(EVENTS[modes[i % len(modes)]] for i in range(len(chunks)))
    # Events are in request order too.
    tags = [l["tag"] for l in lines]
    assert tags == sorted(tags, key=lambda t: int(t.split(".")[1]))
    assert nothing_pending(s) == b""
    assert_acks_sent(ferryd, len(chunks))
    s.close()


def _pipe_fill(fd):
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def test_ack_waits_until_every_output_has_written(ferryd_factory, tmp_path):
    # The second output writes into a FIFO the test holds: while the test does not read it,
    # that output's write cannot finish, so the chunk must not be acked.
    fifo = str(tmp_path / "slow.fifo")
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets ferryd open the FIFO for writing
    try:
        d = ferryd_factory(
            extra_config=f'[slow]\ntype = "FileOutput"\nmatch = "**"\npath = "{fifo}"')
        capacity = fcntl.fcntl(rfd, F_GETPIPE_SZ)
        n = 4000
        entries = [[1700000000 + i, {"i": i, "pad": "p" * 200}] for i in range(n)]
        assert n * 200 > 4 * capacity
        s = d.connect()
        s.sendall(pack(["slow.t", entries, {"chunk": "slow-chunk"}]))
        wait_for(lambda: _pipe_fill(rfd) >= capacity, "the slow output to fill its pipe")
        # The regular FileOutput finishes; the FIFO one is stuck: still no ack.
        assert len(d.wait_lines(n)) == n
        assert nothing_pending(s) == b""

        got = bytearray()

        def drained():
            while True:
                try:
                    data = os.read(rfd, 1 << 16)
                except BlockingIOError:
                    break
                if not data:
                    break
                got.extend(data)
            return got.count(b"\n") >= n

        wait_for(drained, f"{n} lines through the FIFO")
        read_ack(s, "slow-chunk")
        slow_lines = [json.loads(line) for line in bytes(got).decode().splitlines()]
        assert slow_lines == d.lines()
        assert slow_lines[-1] == {"tag": "slow.t", "time": "2023-11-14T23:19:59.000000000Z",
                                  "record": {"i": n - 1, "pad": "p" * 200}}
        assert nothing_pending(s) == b""
        s.close()
    finally:
        os.close(rfd)


def test_ack_comes_after_the_events_are_in_the_file(ferryd):
    s = ferryd.connect()
    total = 0
    for round_ in range(3):
        n = 3000 + round_
        entries = [[1700000000 + i, {"r": round_, "i": i, "pad": "p" * 64}] for i in range(n)]
        s.sendall(pack(["big.t", entries, {"chunk": "round-%d" % round_}]))
        read_ack(s, "round-%d" % round_)
        total += n
        # Read right after the ack, no waiting: every event is already in the file.
        lines = ferryd.lines()
        assert len(lines) == total
        assert lines[-1]["record"] == {"r": round_, "i": n - 1, "pad": "p" * 64}
    s.close()


def test_no_ack_without_chunk_option(ferryd):
    s = ferryd.connect()
    s.sendall(pack(["noack.msg", 1700000000, {"a": 1}])
              + pack(["noack.opt", 1700000000, {"a": 2}, {"size": 1}])
              + pack(["noack.fwd", [[1700000000, {"a": 3}]], {"compressed": "text"}])
              + pack(["noack.pk", PACKED]))
    ferryd.wait_lines(5)
    ferryd.wait_counter("events", 5)
    assert nothing_pending(s) == b""
    # A chunked request behind them: its ack is the first and only thing ever received.
    s.sendall(pack(["noack.last", 1700000000, {"a": 4}, {"chunk": "last"}]))
    read_ack(s, "last")
    assert nothing_pending(s) == b""
    assert_acks_sent(ferryd, 1)
    s.close()


@pytest.mark.parametrize("record", ["a string", 5, None, [1, 2]], ids=["str", "int", "nil", "array"])
def test_message_whose_record_is_not_a_map_is_acked_but_not_written(ferryd, record):
    s = ferryd.connect()
    s.sendall(pack(["bad.rec", 1700000000, record, {"chunk": "bad"}])
              + pack(["good.rec", 1700000001, {"ok": True}, {"chunk": "good"}]))
    read_ack(s, "bad")
    read_ack(s, "good")
    assert ferryd.lines() == [{"tag": "good.rec", "time": "2023-11-14T22:13:21.000000000Z",
                               "record": {"ok": True}}]
    assert_acks_sent(ferryd, 2)
    stats = ferryd.stats()["in"]
    assert stats["invalid_entries"] == 1
    assert stats["events"] == 1
    s.close()


def test_frame_skipped_for_tag_length_is_not_acked(ferryd_factory):
    d = ferryd_factory(input_options="max_tag_length = 8")
    s = d.connect()
    s.sendall(pack(["toolong.tag", 1700000000, {"a": 1}, {"chunk": "skipped-1"}]))
    d.wait_counter("frames_tag_too_long", 1)
    assert nothing_pending(s) == b""
    s.sendall(pack(["ok.tag", 1700000000, {"a": 2}, {"chunk": "kept"}])
              + pack(["also.too.long", [[1700000000, {"a": 3}]], {"chunk": "skipped-2"}])
              + pack(["12345678", 1700000000, {"a": 4}, {"chunk": "kept-8"}]))
    # Acks come in request order, so a stray ack for a skipped frame would show up here.
    read_ack(s, "kept")
    read_ack(s, "kept-8")
    assert d.lines() == [
        {"tag": "ok.tag", "time": "2023-11-14T22:13:20.000000000Z", "record": {"a": 2}},
        {"tag": "12345678", "time": "2023-11-14T22:13:20.000000000Z", "record": {"a": 4}},
    ]
    assert_acks_sent(d, 2)
    stats = d.stats()["in"]
    assert stats["frames_tag_too_long"] == 2
    assert stats["frames_skipped"] == 2
    assert nothing_pending(s) == b""
    s.close()


SKIPS = {
    # name: (input_options, bad request, counter that moves)
    "corrupt-gzip": ("", pack(["skip.t", b"\x1f\x8b\x08\x00garbage", {"chunk": "bad",
                                                                     "compressed": "gzip"}]),
                     "frames_bad_compression"),
    "zstd": ("", pack(["skip.t", b"\x28\xb5\x2f\xfd", {"chunk": "bad", "compressed": "zstd"}]),
             "frames_bad_compression"),
    "too-many-entries": ("max_entries_per_frame = 2",
                         pack(["skip.t", [[1700000000, {}]] * 3, {"chunk": "bad"}]),
                         "frames_too_many_entries"),
    "decompressed-too-large": ('max_decompressed_size = "1KiB"',
                               pack(["skip.t", gzip.compress(pack([1700000000, {"p": "z" * 2000}])),
                                     {"chunk": "bad", "compressed": "gzip"}]),
                               "frames_decompressed_too_large"),
}


@pytest.mark.parametrize("reason", sorted(SKIPS))
def test_frame_skipped_for_other_limits_is_not_acked(ferryd_factory, reason):
    options, bad, counter = SKIPS[reason]
    d = ferryd_factory(input_options=options)
    s = d.connect()
    s.sendall(bad)
    d.wait_counter(counter, 1)
    assert nothing_pending(s) == b""
    s.sendall(pack(["next.t", [[1700000000, {"n": 1}], [1700000001, {"n": 2}]], {"chunk": "next"}]))
    read_ack(s, "next")
    assert [l["record"] for l in d.lines()] == [{"n": 1}, {"n": 2}]
    assert_acks_sent(d, 1)
    stats = d.stats()["in"]
    assert stats["frames_skipped"] == 1
    assert stats[counter] == 1
    assert nothing_pending(s) == b""
    s.close()


@pytest.mark.parametrize("mode", ["message", "gzip"])
def test_half_close_still_gets_its_ack(ferryd, mode):
    s = ferryd.connect()
    s.sendall(request(mode, "half-close"))
    s.shutdown(socket.SHUT_WR)
    read_ack(s, "half-close")
    # Then the server closes: EOF, nothing else.
    s.settimeout(DEADLINE)
    assert s.recv(100) == b""
    assert len(ferryd.lines()) == EVENTS[mode]
    s.close()


class _RouteFerryd(Ferryd):
    """A ferryd whose only output is a FileOutput with the given `match` (the conftest one
    always has a `**` output, so no event can go unmatched there)."""

    def __init__(self, tmp_path, match):  # replaces Ferryd.__init__: only the config differs
        self.tmp_path = tmp_path
        self.port = free_port()
        self.out_path = str(tmp_path / "out.jsonl")
        self.config_path = str(tmp_path / "ferry.toml")
        self.stderr_path = str(tmp_path / "stderr.log")
        self.stdout_path = str(tmp_path / "stdout.log")
        with open(self.config_path, "w") as f:
            f.write(f'[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:{self.port}"\n\n'
                    f'[file]\ntype = "FileOutput"\nmatch = "{match}"\npath = "{self.out_path}"\n')
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


@pytest.fixture
def routed_ferryd(tmp_path):
    d = _RouteFerryd(tmp_path, "only.this.**")
    yield d
    d.close()


def test_ack_sent_when_no_output_matches(routed_ferryd):
    d = routed_ferryd
    s = d.connect()
    big = [[1700000000, {"i": i, "pad": "q" * 64}] for i in range(3000)]
    s.sendall(pack(["only.this.big", big, {"chunk": "routed-big"}])
              # settled at once (nothing to write), but must not overtake the ack above
              + pack(["nobody.listens", [[1700000000, {"a": 1}], [1700000001, {"a": 2}]],
                      {"chunk": "unrouted"}])
              + pack(["only.this.one", 1700000002, {"a": 3}, {"chunk": "routed"}]))
    read_ack(s, "routed-big")
    read_ack(s, "unrouted")
    read_ack(s, "routed")
    lines = d.lines()
    assert len(lines) == 3001
    assert {l["tag"] for l in lines[:3000]} == {"only.this.big"}
    assert lines[3000] == {"tag": "only.this.one", "time": "2023-11-14T22:13:22.000000000Z",
                           "record": {"a": 3}}
    assert_acks_sent(d, 3)
    stats = d.stats()
    assert stats["router"]["unmatched_events"] == 2
    assert stats["in"]["acks_withheld"] == 0
    assert nothing_pending(s) == b""
    s.close()


def test_acks_sent_counter_counts_each_ack_across_connections(ferryd):
    socks = [ferryd.connect() for _ in range(3)]
    for k, s in enumerate(socks):
        for j in range(k + 1):
            s.sendall(request("forward", "c%d-%d" % (k, j)))
    for k, s in enumerate(socks):
        for j in range(k + 1):
            read_ack(s, "c%d-%d" % (k, j))
    assert_acks_sent(ferryd, 6)
    stats = ferryd.stats()["in"]
    assert stats["acks_withheld"] == 0
    assert stats["events"] == 12
    for s in socks:
        assert nothing_pending(s) == b""
        s.close()
