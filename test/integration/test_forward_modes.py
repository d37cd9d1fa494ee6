# Every forward-protocol carrier mode and encoding ferryd accepts, checked field by field in
# the FileOutput and StdoutOutput text: fluent-logger, Message/Forward/PackedForward/gzip,
# time forms, non-minimal msgpack, stream splitting, JSON connections, heartbeats, routing.
import base64
import datetime
import gzip
import json
import os
import socket
import struct
import time

import msgpack
import pytest
from fluent import sender

from conftest import DEADLINE, recv_exactly, wait_for


# ---- helpers -------------------------------------------------------------------------------

def et(sec, nsec=0):
    """An EventTime as python-msgpack packs it (fixext8, type 0)."""
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def arr(*parts):
    """A msgpack array (minimal header) of already-packed elements."""
    n = len(parts)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(parts)


def rmap(*pairs):
    """A msgpack map (minimal header) of already-packed (key, value) pairs."""
    n = len(pairs)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(k + v for k, v in pairs)


def raw_str(b):
    """A msgpack str holding exactly these bytes (no UTF-8 check)."""
    n = len(b)
    if n < 32:
        return bytes([0xa0 | n]) + b
    if n < 256:
        return b"\xd9" + bytes([n]) + b
    if n < 65536:
        return b"\xda" + struct.pack(">H", n) + b
    return b"\xdb" + struct.pack(">I", n) + b


def str32(b):
    """A str32 header whatever the length (Fluentd's out_forward packs entries this way)."""
    return b"\xdb" + struct.pack(">I", len(b)) + b


def iso_to_ns(text):
    """'2023-11-14T22:13:20.500000000Z' -> ns since the epoch; asserts the exact shape."""
    assert len(text) == 30 and text[19] == "." and text.endswith("Z"), text
    whole = datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return int(whole.timestamp()) * 1_000_000_000 + int(text[20:29])


def raw_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return f.read().decode("utf-8").splitlines()


def send(ferryd, data):
    s = ferryd.connect()
    s.sendall(data)
    return s


def nothing_pending(sock):
    """Non-blocking read: the bytes the server has sent that were not read yet."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        data = b""
    finally:
        sock.settimeout(DEADLINE)
    return data


def ack_for(chunk):
    return b"\x81\xa3ack" + raw_str(chunk.encode() if isinstance(chunk, str) else chunk)


def ev(tag, time_text, record):
    return {"tag": tag, "time": time_text, "record": record}


T0 = "2023-11-14T22:13:20"  # 1700000000


# ---- output formats ------------------------------------------------------------------------

def test_file_output_line_is_exact_for_every_value_type(ferryd):
    record = rmap(
        (pack("s"), pack("plain")),
        (pack("esc"), pack('q"b\\\n\t\r\b\f\x01\x1f/')),
        (pack("utf8"), pack("h\u00e9llo \u65e5\u672c \U0001F680")),
        (pack("bin"), pack(b"\x00\x01\xfe\xff raw")),
        (pack("bad"), raw_str(b"caf\xe9")),
        (pack("trunc"), raw_str(b"a\xe6\x97")),
        (pack("overlong"), raw_str(b"\xc0\x80")),
        (pack("surrogate"), raw_str(b"\xed\xa0\x80")),
        (pack("ints"), pack([0, 127, 128, 255, 65535, 2**32, 2**64 - 1, -1, -32, -33, -128,
                             -129, -2**31 - 1, -2**63])),
        (pack("floats"), pack([1.0, 3.25, -0.001, 0.1, 1e300, 100.0, -0.0])),
        (pack("f32"), b"\xca" + struct.pack(">f", 0.5)),
        (pack("nil"), pack(None)),
        (pack("t"), pack(True)),
        (pack("f"), pack(False)),
        (pack("nested"), pack({"a": [1, {"b": []}, {}], "c": {"d": {"e": None}}})),
        # ext 5 (ext8), ext -1 (fixext4, the msgpack timestamp), fixext1, fixext2
        (pack("ext"), arr(b"\xc7\x03\x05\x01\x02\x03", b"\xd6\xff" + b"\0" * 4,
                          b"\xd4\x01\x01", b"\xd5\x02\x01\x02")),
    )
    send(ferryd, arr(pack("fmt.all"), pack(et(1700000000, 123456789)), record))
    ferryd.wait_lines(1)
    expected = (
        '{"tag":"fmt.all","time":"2023-11-14T22:13:20.123456789Z","record":{'
        '"s":"plain",'
        '"esc":"q\\"b\\\\\\n\\t\\r\\b\\f\\u0001\\u001f/",'
        '"utf8":"h\u00e9llo \u65e5\u672c \U0001F680",'
        '"bin":"\\u0000\\u0001\\u00fe\\u00ff raw",'
        '"bad":"caf\\u00e9",'
        '"trunc":"a\\u00e6\\u0097",'
        '"overlong":"\\u00c0\\u0080",'
        '"surrogate":"\\u00ed\\u00a0\\u0080",'
        '"ints":[0,127,128,255,65535,4294967296,18446744073709551615,-1,-32,-33,-128,-129,'
        '-2147483649,-9223372036854775808],'
        '"floats":[1.0,3.25,-0.001,0.1,1e+300,100.0,-0.0],'
        '"f32":0.5,'
        '"nil":null,"t":true,"f":false,'
        '"nested":{"a":[1,{"b":[]},{}],"c":{"d":{"e":null}}},'
        '"ext":[{"$ext":5,"$data":"AQID"},{"$ext":-1,"$data":"AAAAAA=="},'
        '{"$ext":1,"$data":"AQ=="},{"$ext":2,"$data":"AQI="}]'
        '}}'
    )
    assert raw_lines(ferryd.out_path) == [expected]
    # And it is JSON whose values decode to what was sent.
    rec = json.loads(expected)["record"]
    assert rec["ints"][6] == 2**64 - 1 and rec["ints"][-1] == -2**63
    assert rec["bad"] == "caf\u00e9"
    assert base64.b64decode(rec["ext"][0]["$data"]) == b"\x01\x02\x03"


def test_stdout_output_line_format(ferryd_factory):
    d = ferryd_factory(extra_config='[so]\ntype = "StdoutOutput"\nmatch = "**"')
    s = send(d, pack(["std.a", et(1700000000, 5), {"k": "v", "n": [1, 2.5, None]}])
             + pack(["std.b", [[1700000001, {"x": b"caf\xe9"}], [et(1700000002, 999999999), {}]]]))
    wait_for(lambda: d.stdout().count("\n") >= 3, "3 stdout lines")
    assert d.stdout().splitlines() == [
        '2023-11-14 22:13:20.000000005 +0000 std.a: {"k":"v","n":[1,2.5,null]}',
        '2023-11-14 22:13:21.000000000 +0000 std.b: {"x":"caf\\u00e9"}',
        '2023-11-14 22:13:22.999999999 +0000 std.b: {}',
    ]
    # The FileOutput got the same events.
    assert d.wait_lines(3) == [
        ev("std.a", T0 + ".000000005Z", {"k": "v", "n": [1, 2.5, None]}),
        ev("std.b", "2023-11-14T22:13:21.000000000Z", {"x": "caf\u00e9"}),
        ev("std.b", "2023-11-14T22:13:22.999999999Z", {}),
    ]
    s.close()


# ---- python3-fluent-logger -----------------------------------------------------------------

def test_fluent_logger_nanosecond_precision(ferryd):
    s = sender.FluentSender("py", host="127.0.0.1", port=ferryd.port, nanosecond_precision=True)
    assert s.emit_with_time("half", 1700000000.5, {"a": 1})
    assert s.emit_with_time("quarter", sender.EventTime(1700000000.25), {"b": "x"})
    before = time.time_ns()
    assert s.emit("now", {"c": None})
    s.close()
    lines = ferryd.wait_lines(3)
    after = time.time_ns()
    assert lines[:2] == [
        ev("py.half", T0 + ".500000000Z", {"a": 1}),
        ev("py.quarter", T0 + ".250000000Z", {"b": "x"}),
    ]
    assert lines[2]["tag"] == "py.now" and lines[2]["record"] == {"c": None}
    # EventTime.now keeps sub-second precision (microseconds from time.time()).
    t = iso_to_ns(lines[2]["time"])
    assert before - 1_000_000 <= t <= after
    assert len(lines) == 3


def test_fluent_logger_integer_time(ferryd):
    s = sender.FluentSender("py", host="127.0.0.1", port=ferryd.port, nanosecond_precision=False)
    assert s.emit_with_time("int", 1700000000, {"a": 1})
    before = int(time.time())
    assert s.emit("now", {"b": 2})
    s.close()
    lines = ferryd.wait_lines(2)
    after = int(time.time())
    assert lines[0] == ev("py.int", T0 + ".000000000Z", {"a": 1})
    assert lines[1]["tag"] == "py.now" and lines[1]["record"] == {"b": 2}
    assert lines[1]["time"].endswith(".000000000Z")
    assert before * 10**9 <= iso_to_ns(lines[1]["time"]) <= after * 10**9
    assert len(lines) == 2


# ---- the four carrier modes ----------------------------------------------------------------

@pytest.mark.parametrize("option", ["absent", "nil", "empty", "map"])
def test_message_mode(ferryd, option):
    base = ["msg.t", et(1700000000, 42), {"k": "v", "n": 7}]
    if option == "nil":
        base.append(None)
    elif option == "empty":
        base.append({})
    elif option == "map":
        base.append({"size": 1, "compressed": "text", "other": [1, 2]})
    s = send(ferryd, pack(base) + pack(["msg.int", 1700000001, {"i": 1}] + base[3:]))
    assert ferryd.wait_lines(2) == [
        ev("msg.t", T0 + ".000000042Z", {"k": "v", "n": 7}),
        ev("msg.int", "2023-11-14T22:13:21.000000000Z", {"i": 1}),
    ]
    assert ferryd.counter("invalid_entries") == 0
    assert nothing_pending(s) == b""  # no chunk, no ack
    s.close()


def test_forward_mode_mixed_time_types_in_order(ferryd):
    entries = [
        [et(1700000000, 1), {"i": 0}],
        [1700000001, {"i": 1}],
        [1700000002.5, {"i": 2}],
        [et(1700000003, 999999999), {"i": 3}],
        [4102444800, {"i": 4}],  # 2100-01-01, beyond int32
        [1700000005.0, {"i": 5}],
    ]
    send(ferryd, pack(["fwd.t", entries]))
    assert ferryd.wait_lines(6) == [
        ev("fwd.t", T0 + ".000000001Z", {"i": 0}),
        ev("fwd.t", "2023-11-14T22:13:21.000000000Z", {"i": 1}),
        ev("fwd.t", "2023-11-14T22:13:22.500000000Z", {"i": 2}),
        ev("fwd.t", "2023-11-14T22:13:23.999999999Z", {"i": 3}),
        ev("fwd.t", "2100-01-01T00:00:00.000000000Z", {"i": 4}),
        ev("fwd.t", "2023-11-14T22:13:25.000000000Z", {"i": 5}),
    ]


def test_float_time_quarter_second_is_exact(ferryd):
    # 1700000000.25 * 1e9 is not a double; converting it whole gives ...20.249999872.
    send(ferryd, pack(["flt.t", [[1700000000.25, {"q": 1}]]]) + pack(["flt.m", 1700000000.25, {}]))
    assert ferryd.wait_lines(2) == [
        ev("flt.t", T0 + ".250000000Z", {"q": 1}),
        ev("flt.m", T0 + ".250000000Z", {}),
    ]


PACKED_ENTRIES = [
    [et(1700000000, 10), {"p": 0}],
    [1700000001, {"p": 1, "b": b"\xff"}],
    [et(1700000002, 20), {"p": 2}],
]
PACKED_EXPECTED = [
    ev("pk.t", T0 + ".000000010Z", {"p": 0}),
    ev("pk.t", "2023-11-14T22:13:21.000000000Z", {"p": 1, "b": "\u00ff"}),
    ev("pk.t", "2023-11-14T22:13:22.000000020Z", {"p": 2}),
]


def packed_payload():
    return b"".join(pack(e) for e in PACKED_ENTRIES)


@pytest.mark.parametrize("carrier", ["bin", "str8", "str32"])
def test_packed_forward(ferryd, carrier):
    payload = packed_payload()
    if carrier == "bin":
        body = pack(payload)
        assert body[0] in (0xc4, 0xc5)
    elif carrier == "str8":
        body = raw_str(payload)
    else:
        body = str32(payload)
    send(ferryd, arr(pack("pk.t"), body, pack({"size": 3})))
    assert ferryd.wait_lines(3) == PACKED_EXPECTED
    assert ferryd.counter("events") == 3


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("carrier", ["bin", "str32"])
def test_compressed_packed_forward(ferryd, members, carrier):
    parts = [pack(e) for e in PACKED_ENTRIES]
    if members == 1:
        payload = gzip.compress(b"".join(parts))
    else:  # one gzip member per entry, concatenated, as Fluentd writes them
        payload = b"".join(gzip.compress(p) for p in parts)
    body = pack(payload) if carrier == "bin" else str32(payload)
    send(ferryd, arr(pack("pk.t"), body, pack({"size": 3, "compressed": "gzip"})))
    assert ferryd.wait_lines(3) == PACKED_EXPECTED
    assert ferryd.counter("frames_bad_compression") == 0


@pytest.mark.parametrize("option", ["absent", "text"])
def test_gzip_payload_detected_by_magic(ferryd, option):
    body = pack(gzip.compress(packed_payload()))
    parts = [pack("pk.t"), body]
    if option == "text":
        parts.append(pack({"compressed": "text"}))
    send(ferryd, arr(*parts))
    assert ferryd.wait_lines(3) == PACKED_EXPECTED


# ---- time encodings ------------------------------------------------------------------------

def test_event_time_fixext8_and_ext8(ferryd):
    fixext8 = b"\xd7\x00" + struct.pack(">II", 1700000000, 111)
    ext8 = b"\xc7\x08\x00" + struct.pack(">II", 1700000001, 222)
    rec = pack({"k": "v"})
    data = (arr(pack("et.fix"), fixext8, rec)
            + arr(pack("et.ext8"), ext8, rec)
            + arr(pack("et.fwd"), arr(arr(ext8, rec), arr(fixext8, rec)))
            + arr(pack("et.packed"), pack(arr(ext8, rec) + arr(fixext8, rec))))
    send(ferryd, data)
    a = T0 + ".000000111Z"
    b = "2023-11-14T22:13:21.000000222Z"
    assert ferryd.wait_lines(6) == [
        ev("et.fix", a, {"k": "v"}), ev("et.ext8", b, {"k": "v"}),
        ev("et.fwd", b, {"k": "v"}), ev("et.fwd", a, {"k": "v"}),
        ev("et.packed", b, {"k": "v"}), ev("et.packed", a, {"k": "v"}),
    ]


def test_v15_time_with_metadata(ferryd):
    entries = [
        [[et(1700000000, 1), {"source": "dummy", "lvl": 2}], {"a": 1}],
        [[et(1700000001, 2), {}], {"a": 2}],
        [[1700000002, {"m": [1, {"x": None}]}], {"a": 3}],
    ]
    data = (pack(["v15.msg", [et(1700000009, 9), {"source": "x"}], {"m": 1}])
            + pack(["v15.msg", [et(1700000009, 10), {}], {"m": 2}, {"size": 1}])
            + pack(["v15.fwd", entries])
            + pack(["v15.pk", b"".join(pack(e) for e in entries), {"size": 3}])
            + pack(["v15.gz", gzip.compress(b"".join(pack(e) for e in entries)),
                    {"compressed": "gzip"}]))
    send(ferryd, data)
    times = [T0 + ".000000001Z", "2023-11-14T22:13:21.000000002Z",
             "2023-11-14T22:13:22.000000000Z"]
    expected = [ev("v15.msg", "2023-11-14T22:13:29.000000009Z", {"m": 1}),
                ev("v15.msg", "2023-11-14T22:13:29.000000010Z", {"m": 2})]
    for tag in ("v15.fwd", "v15.pk", "v15.gz"):
        expected += [ev(tag, times[i], {"a": i + 1}) for i in range(3)]
    assert ferryd.wait_lines(11) == expected  # the metadata is not part of the record
    assert ferryd.counter("invalid_entries") == 0


def test_non_minimal_headers(ferryd):
    def array32(*parts):
        return b"\xdd" + struct.pack(">I", len(parts)) + b"".join(parts)

    def map32(*pairs):
        return b"\xdf" + struct.pack(">I", len(pairs)) + b"".join(k + v for k, v in pairs)

    def array16(*parts):
        return b"\xdc" + struct.pack(">H", len(parts)) + b"".join(parts)

    def map16(*pairs):
        return b"\xde" + struct.pack(">H", len(pairs)) + b"".join(k + v for k, v in pairs)

    def str16(b):
        return b"\xda" + struct.pack(">H", len(b)) + b

    def str8(b):
        return b"\xd9" + bytes([len(b)]) + b

    rec = map32((str32(b"k"), str32(b"v")), (str8(b"n"), b"\xcf" + struct.pack(">Q", 5)),
                (str16(b"neg"), b"\xd3" + struct.pack(">q", -3)),
                (str8(b"i"), b"\xd1" + struct.pack(">h", 7)),
                (str8(b"l"), array32(b"\xcc\x01", b"\xcd\x00\x02", b"\xce\x00\x00\x00\x03")))
    expected_rec = {"k": "v", "n": 5, "neg": -3, "i": 7, "l": [1, 2, 3]}
    uint64_time = b"\xcf" + struct.pack(">Q", 1700000000)
    data = (
        # Message: array32 root, str32 tag, uint64 time, map32 record, map32 option
        array32(str32(b"nm.msg"), uint64_time, rec, map32())
        # Forward: array16 root, str16 tag, array32 entries, array32 entry (Fluent Bit style)
        + array16(str16(b"nm.fwd"), array32(array32(uint64_time, rec),
                                            array16(b"\xd7\x00" + struct.pack(">II", 1700000000, 7),
                                                    map16())),
                  map32((str8(b"size"), b"\xce\x00\x00\x00\x02")))
        # PackedForward: bin32 payload of array32 entries
        + array32(str8(b"nm.pk"), b"\xc6" + struct.pack(">I", len(array32(uint64_time, rec)))
                  + array32(uint64_time, rec))
    )
    send(ferryd, data)
    assert ferryd.wait_lines(4) == [
        ev("nm.msg", T0 + ".000000000Z", expected_rec),
        ev("nm.fwd", T0 + ".000000000Z", expected_rec),
        ev("nm.fwd", T0 + ".000000007Z", {}),
        ev("nm.pk", T0 + ".000000000Z", expected_rec),
    ]
    assert ferryd.counter("invalid_entries") == 0


def test_time_zero_is_replaced_by_receive_time(ferryd):
    before = time.time_ns()
    send(ferryd, pack(["z.msg_int", 0, {"i": 0}])
         + pack(["z.msg_et", et(0, 0), {"i": 1}])
         + pack(["z.fwd", [[0, {"i": 2}], [et(0, 0), {"i": 3}], [1700000000, {"i": 4}]]])
         + pack(["z.pk", pack([0, {"i": 5}])])
         + pack(["z.v15", [[[et(0, 0), {}], {"i": 6}]]]))
    lines = ferryd.wait_lines(7)
    after = time.time_ns()
    assert [(l["tag"], l["record"]) for l in lines] == [
        ("z.msg_int", {"i": 0}), ("z.msg_et", {"i": 1}), ("z.fwd", {"i": 2}),
        ("z.fwd", {"i": 3}), ("z.fwd", {"i": 4}), ("z.pk", {"i": 5}), ("z.v15", {"i": 6})]
    assert lines[4]["time"] == T0 + ".000000000Z"
    for line in lines[:4] + lines[5:]:
        t = iso_to_ns(line["time"])
        assert before - 2 * 10**9 <= t <= after + 2 * 10**9, line


# ---- stream splitting ----------------------------------------------------------------------

def test_many_requests_pipelined_in_one_send(ferryd):
    n = 3000  # ~135 KB: crosses the daemon's 64 KiB read size
    data = b"".join(pack(["pipe.%d" % (i % 3), 1700000000 + i, {"seq": i, "pad": "x" * 20}])
                    for i in range(n))
    assert len(data) > 2 * 65536
    s = ferryd.connect()
    s.sendall(data)
    lines = ferryd.wait_lines(n)
    assert len(lines) == n
    for i, line in enumerate(lines):
        assert line["record"] == {"seq": i, "pad": "x" * 20}
        assert line["tag"] == "pipe.%d" % (i % 3)
    assert lines[-1]["time"] == datetime.datetime.fromtimestamp(
        1700000000 + n - 1, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ".000000000Z"
    assert ferryd.counter("frames") == n
    s.close()


def test_request_split_byte_by_byte(ferryd):
    frame = pack(["split.t", [[et(1700000000, i), {"i": i, "s": "y" * 40}] for i in range(5)],
                  {"size": 5}])
    follow = pack(["split.after", 1700000001, {"done": True}])
    s = ferryd.connect()
    for k in range(len(frame) - 1):
        s.sendall(frame[k:k + 1])
    # Everything but the last byte has been read: no request is complete yet.
    ferryd.wait_counter("bytes", len(frame) - 1)
    assert ferryd.counter("frames") == 0
    assert ferryd.lines() == []
    s.sendall(frame[-1:] + follow[:3])
    s.sendall(follow[3:])
    lines = ferryd.wait_lines(6)
    assert lines == [ev("split.t", T0 + ".%09dZ" % i, {"i": i, "s": "y" * 40}) for i in range(5)] \
        + [ev("split.after", "2023-11-14T22:13:21.000000000Z", {"done": True})]
    assert ferryd.counter("frames") == 2
    s.close()


# ---- JSON connections ----------------------------------------------------------------------

def test_json_connection_message_and_forward_with_json_ack(ferryd):
    s = ferryd.connect()
    s.sendall(b'["js.msg", 1700000000, {"k":"v"}]\n')
    s.sendall(b'  ["js.fwd", [[1700000001, {"a":[1,2.5,null,true,false]}], '
              b'[1700000002, {"u":"\\u00e9\\ud83d\\ude80","q":"\\"]["}]], {"chunk":"p8n9gmxTQVC8/nh2wlKKeQ=="}]')
    expected_ack = b'{"ack":"p8n9gmxTQVC8/nh2wlKKeQ=="}'
    assert recv_exactly(s, len(expected_ack)) == expected_ack
    assert ferryd.lines() == [
        ev("js.msg", T0 + ".000000000Z", {"k": "v"}),
        ev("js.fwd", "2023-11-14T22:13:21.000000000Z", {"a": [1, 2.5, None, True, False]}),
        ev("js.fwd", "2023-11-14T22:13:22.000000000Z", {"u": "\u00e9\U0001F680", "q": '"]['}),
    ]
    # A Message-mode request with a chunk on the same connection: JSON ack again.
    s.sendall(b'["js.msg2",1700000003,{"n":-5},{"chunk":"abc\\n"}]')
    expected_ack = b'{"ack":"abc\\n"}'
    assert recv_exactly(s, len(expected_ack)) == expected_ack
    assert ferryd.lines()[-1] == ev("js.msg2", "2023-11-14T22:13:23.000000000Z", {"n": -5})
    ferryd.wait_counter("acks_sent", 2)
    stats = ferryd.stats()["in"]
    assert stats["json_connections"] == 1
    assert stats["acks_sent"] == 2
    assert nothing_pending(s) == b""
    s.close()


# ---- heartbeats, ignored roots, invalid entries --------------------------------------------

def test_nil_heartbeat_and_non_array_roots_are_ignored(ferryd):
    s = ferryd.connect()
    s.sendall(b"\xc0" + pack(5) + pack({"tag": "x"}) + pack("str") + b"\xc0"
              + pack(["hb.after", 1700000000, {"ok": True}, {"chunk": "c1"}]))
    assert recv_exactly(s, len(ack_for("c1"))) == ack_for("c1")
    assert ferryd.lines() == [ev("hb.after", T0 + ".000000000Z", {"ok": True})]
    stats = ferryd.stats()["in"]
    assert stats["heartbeats_tcp"] == 2
    assert stats["ignored_roots"] == 3
    assert stats["connections_closed_on_error"] == 0
    assert stats["frames"] == 6
    # Still usable afterwards.
    s.sendall(pack(["hb.again", 1700000001, {}]))
    assert ferryd.wait_lines(2)[1] == ev("hb.again", "2023-11-14T22:13:21.000000000Z", {})
    s.close()


def test_json_null_and_object_roots_are_ignored(ferryd):
    s = ferryd.connect()
    s.sendall(b'["jhb.first", 1700000000, {}] null {"tag":"x"} 7 '
              b'["jhb.last", 1700000001, {"k":1}, {"chunk":"j"}]')
    assert recv_exactly(s, len(b'{"ack":"j"}')) == b'{"ack":"j"}'
    assert ferryd.lines() == [ev("jhb.first", T0 + ".000000000Z", {}),
                              ev("jhb.last", "2023-11-14T22:13:21.000000000Z", {"k": 1})]
    stats = ferryd.stats()["in"]
    assert stats["heartbeats_tcp"] == 1
    assert stats["ignored_roots"] == 2
    assert stats["json_connections"] == 1
    s.close()


def test_tag_is_json_escaped_in_file_output(ferryd):
    send(ferryd, arr(raw_str(b'q"\\t\xff\n'), pack(1700000000), pack({}))
         + arr(pack(b"bin.tag"), pack(1700000000), pack({})))
    ferryd.wait_lines(2)
    assert raw_lines(ferryd.out_path) == [
        '{"tag":"q\\"\\\\t\\u00ff\\n","time":"2023-11-14T22:13:20.000000000Z","record":{}}',
        '{"tag":"bin.tag","time":"2023-11-14T22:13:20.000000000Z","record":{}}',
    ]


def test_invalid_entries_in_forward_frame_are_skipped_and_counted(ferryd):
    entries = [
        pack([1700000000, {"ok": 1}]),
        pack([1700000000]),                      # no record
        pack([1700000000, "not a map"]),         # record not a map
        pack(["yesterday", {"bad": "time"}]),    # time not a time
        pack(5),                                 # entry not an array
        pack([msgpack.ExtType(1, b"\0" * 8), {"bad": "ext type"}]),
        pack([msgpack.ExtType(0, b"\0" * 4), {"bad": "ext length"}]),
        pack([et(1700000000, 1_000_000_000), {"bad": "nsec"}]),
        pack([None, {"bad": "nil time"}]),
        pack([1700000002, {"ok": 2}]),
    ]
    send(ferryd, arr(pack("inv.fwd"), arr(*entries))
         + arr(pack("inv.pk"), pack(b"".join(entries[:4]))))
    lines = ferryd.wait_lines(3)
    assert lines == [
        ev("inv.fwd", T0 + ".000000000Z", {"ok": 1}),
        ev("inv.fwd", "2023-11-14T22:13:22.000000000Z", {"ok": 2}),
        ev("inv.pk", T0 + ".000000000Z", {"ok": 1}),
    ]
    wait_for(lambda: ferryd.counter("invalid_entries") == 11, "invalid_entries == 11")
    stats = ferryd.stats()["in"]
    assert stats["events"] == 3
    assert stats["frames_skipped"] == 0


def test_forward_frame_with_invalid_first_entry_and_option(ferryd):
    s = send(ferryd, pack(["inv.first", [5, [1700000000, {"ok": 1}]], {"chunk": "c1"}]))
    # (the daemon writes 1970-01-01T00:00:05 {"chunk":"c1"} here)
    assert ferryd.wait_lines(1) == [ev("inv.first", T0 + ".000000000Z", {"ok": 1})]
    assert ferryd.counter("invalid_entries") == 1
    assert recv_exactly(s, len(ack_for("c1"))) == ack_for("c1")


def test_udp_heartbeat(ferryd):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(DEADLINE)
    u.bind(("127.0.0.1", 0))
    u.sendto(b"\x00", ("127.0.0.1", ferryd.port))
    data, addr = u.recvfrom(16)
    assert data == b"\x00"
    assert addr == ("127.0.0.1", ferryd.port)
    assert ferryd.counter("heartbeats_udp") == 1
    u.close()


# ---- routing --------------------------------------------------------------------------------

def test_tag_pattern_routing_to_second_file_output(ferryd_factory, tmp_path):
    f2 = tmp_path / "app.jsonl"
    d = ferryd_factory(extra_config=f'[f2]\ntype = "FileOutput"\nmatch = "app.**"\npath = "{f2}"')
    tags = ["app", "app.web", "apps", "x.app", "app.web.deep", "other", "ap"]
    s = send(d, b"".join(pack([t, 1700000000, {"t": t}]) for t in tags))
    all_lines = d.wait_lines(len(tags))
    assert [l["tag"] for l in all_lines] == tags
    wanted = ["app", "app.web", "app.web.deep"]
    wait_for(lambda: len(raw_lines(str(f2))) >= 3, "3 lines in the second output")
    assert [json.loads(l) for l in raw_lines(str(f2))] == [
        ev(t, T0 + ".000000000Z", {"t": t}) for t in wanted]
    stats = d.stats()
    assert stats["f2"]["events_out"] == 3
    assert stats["file"]["events_out"] == len(tags)
    assert stats["router"]["unmatched_events"] == 0
    s.close()
