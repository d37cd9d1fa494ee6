# Heka TcpInput/UdpInput against ../shared/vectors/heka: every count comes from each capture's
# .json (sent whole and one byte per send(), signers in both config forms); UDP datagrams,
# hekad-style configs, config errors, limits and the graceful drain.
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (DEADLINE, FERRYD, VECTORS, Ferryd, free_port, read_json_lines, wait_closed,
                      wait_for)

HEKA = os.path.join(VECTORS, "heka")
# The README's receiver keys.
KEYS = {"test_0": "4865ey9urgkidls xtb0[7lf9rzcivthkm",
        "test_1": "xdd908lfcgikauexdi8elogusridaxoalf"}
DEFAULT_MAX = 65536


# ------------------------------------------------------------------------------------------
# Vectors


def load_vector(name):
    with open(os.path.join(HEKA, name + ".bin"), "rb") as f:
        data = f.read()
    frames = []
    with open(os.path.join(HEKA, name + ".json")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                frames.append(json.loads(line))
    return data, frames


def expected_counts(name, keys=KEYS, max_message_size=DEFAULT_MAX):
    """What a TcpInput with `keys` must count for the capture, from its .json verdicts."""
    data, frames = load_vector(name)
    exp = {"bytes": len(data), "messages": 0, "records": 0, "bad_signatures": 0,
           "unknown_signers": 0, "oversize_records": 0, "skipped_bytes": 0, "decode_errors": 0}
    uuids = []
    for fr in frames:
        if "error" in fr:
            m = re.match(r"garbage: (\d+) bytes skipped", fr["error"])
            assert m, fr["error"]
            exp["skipped_bytes"] += int(m.group(1))
            continue
        length = fr["header"].get("message_length", 0)
        if length > max_message_size:
            # The header is refused; the search for the next record runs through the frame.
            exp["oversize_records"] += 1
            exp["skipped_bytes"] += 3 + fr["header_len"] + length
            continue
        exp["records"] += 1
        verdict = fr["hmac_check"]
        signer = verdict.split(":")[1] if ":" in verdict else None
        if verdict.startswith("valid:") and signer not in keys:
            verdict = "unknown-signer:" + signer  # the capture was checked with every key
        if verdict == "unsigned" or verdict.startswith("valid:"):
            exp["messages"] += 1
            uuids.append(fr["message"].get("uuid", ""))
        elif verdict.startswith("INVALID:"):
            exp["bad_signatures"] += 1
        elif verdict.startswith("unknown-signer:"):
            exp["unknown_signers"] += 1
        else:
            raise AssertionError("unexpected verdict " + verdict)
    return data, exp, uuids


def bodies(name):
    """The message bodies of a well-formed capture, in order."""
    data, frames = load_vector(name)
    out = []
    for fr in frames:
        start = fr["offset"] + 3 + fr["header_len"]
        out.append(data[start:start + fr["header"]["message_length"]])
    return out


def records(name):
    """The framed records of a well-formed capture, in order."""
    data, frames = load_vector(name)
    return [data[fr["offset"]:fr["offset"] + 3 + fr["header_len"] + fr["header"]["message_length"]]
            for fr in frames]


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def frame(body, header_fields=b""):
    header = b"\x08" + varint(len(body)) + header_fields
    return b"\x1e" + bytes([len(header)]) + header + b"\x1f" + body


# ------------------------------------------------------------------------------------------
# A ferryd with the config under test

SPLITTER_FORM = """
[in]
type = "TcpInput"
address = "127.0.0.1:@PORT@"
splitter = "signed_splitter"

[signed_splitter]
type = "HekaFramingSplitter"
[signed_splitter.signer.test_0]
hmac_key = "@KEY0@"
[signed_splitter.signer.test_1]
hmac_key = "@KEY1@"
"""

INPUT_FORM = """
[in]
type = "TcpInput"
address = "127.0.0.1:@PORT@"
[in.signer.test_0]
hmac_key = "@KEY0@"
[in.signer.test_1]
hmac_key = "@KEY1@"
"""

OUTPUTS = """
[file]
type = "FileOutput"
match = "**"
path = "@OUT@"

[signed]
type = "FileOutput"
match = "**"
message_signer = "test"
path = "@SIGNED@"
"""


def render(text, d):
    return (text.replace("@PORT@", str(d.port)).replace("@UDP@", str(d.udp_port))
            .replace("@OUT@", d.out_path).replace("@SIGNED@", d.signed_path)
            .replace("@KEY0@", KEYS["test_0"]).replace("@KEY1@", KEYS["test_1"]))


class HekaFerryd(Ferryd):
    """A ferryd running `config` (placeholders @PORT@, @UDP@, @OUT@, @SIGNED@, @KEY0@,
    @KEY1@). Replaces Ferryd.__init__: only the config differs."""

    def __init__(self, tmp_path, config, outputs=OUTPUTS, input_name="in"):
        self.tmp_path = tmp_path
        self.input_name = input_name
        self.port = free_port()
        self.udp_port = free_port()
        self.out_path = str(tmp_path / "out.jsonl")
        self.signed_path = str(tmp_path / "signed.jsonl")
        self.config_path = str(tmp_path / "ferry.toml")
        self.stderr_path = str(tmp_path / "stderr.log")
        self.stdout_path = str(tmp_path / "stdout.log")
        with open(self.config_path, "w") as f:
            f.write(render(config + outputs, self))
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

    def input_stats(self):
        return self.stats().get(self.input_name, {})

    def wait_bytes(self, n):
        """Waits until the input has read n bytes; returns its counters then (every record
        of a read is counted in the same loop turn as its bytes)."""
        return wait_for(lambda: (lambda s: s if s.get("bytes", 0) >= n else None)(
            self.input_stats()), f"input bytes >= {n}")

    def signed_lines(self):
        return read_json_lines(self.signed_path)

    def wait_out_events(self, n, output="file"):
        wait_for(lambda: self.stats().get(output, {}).get("events_out", 0) >= n,
                 f"{output}.events_out >= {n}")


@pytest.fixture
def heka(tmp_path):
    started = []

    def make(config, outputs=OUTPUTS, input_name="in"):
        sub = tmp_path / f"d{len(started)}"
        sub.mkdir()
        d = HekaFerryd(sub, config, outputs, input_name)
        started.append(d)
        return d

    yield make
    for d in started:
        d.close()


def send_tcp(d, data, bytewise=False):
    s = d.connect()
    if bytewise:
        for i in range(len(data)):
            s.send(data[i:i + 1])
    else:
        s.sendall(data)
    s.close()


def check_counts(d, exp, uuids):
    got = d.wait_bytes(exp["bytes"])
    for key, value in exp.items():
        assert got.get(key, 0) == value, f"{key}: {got}"
    if uuids:
        d.wait_out_events(len(uuids))
    lines = d.lines()
    assert [line["record"].get("Uuid", "") for line in lines] == uuids


# ------------------------------------------------------------------------------------------
# TCP: the captures

VECTOR_FILES = [
    "go-client-gen-none", "go-client-gen-md5", "go-client-gen-sha1",
    "go-client-gen-md5-badkey", "go-client-gen-md5-unknown", "go-client-gen-oversize-none",
    "stream-garbage-then-7-valid", "stream-oversize-then-2-valid",
    "flood-fixed_unsigned", "flood-fixed_signed_sha1", "flood-variable_unsigned",
    "flood-variable_signed_md5", "heka-inject-1", "hekad-tcpoutput-from-heka-py-tcp",
    "hekad-tcpoutput-from-heka-node",
]


def test_expectations_follow_the_readme():
    """The derived expectations agree with what the vectors README says hekad does."""
    assert expected_counts("go-client-gen-none")[1]["messages"] == 7
    _, bad, _ = expected_counts("go-client-gen-md5-badkey")
    assert bad["messages"] == 0 and bad["bad_signatures"] == bad["records"] > 0
    _, unknown, _ = expected_counts("go-client-gen-md5-unknown")
    assert unknown["messages"] == 0 and unknown["unknown_signers"] == unknown["records"] > 0
    _, garbage, _ = expected_counts("stream-garbage-then-7-valid")
    assert garbage["messages"] == 7 and garbage["skipped_bytes"] == 5
    _, over, _ = expected_counts("stream-oversize-then-2-valid")
    assert over["messages"] == 2 and over["oversize_records"] == 1


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("name", VECTOR_FILES)
def test_vector_splitter_signers(heka, name, bytewise):
    data, exp, uuids = expected_counts(name)
    d = heka(SPLITTER_FORM)
    send_tcp(d, data, bytewise)
    check_counts(d, exp, uuids)
    assert d.stop() == 0


@pytest.mark.parametrize("name", ["go-client-gen-md5", "go-client-gen-sha1",
                                  "go-client-gen-md5-badkey", "go-client-gen-md5-unknown",
                                  "flood-variable_signed_md5"])
def test_vector_input_signers_old_form(heka, name):
    data, exp, uuids = expected_counts(name)
    d = heka(INPUT_FORM)
    send_tcp(d, data)
    check_counts(d, exp, uuids)


def test_signed_messages_carry_their_signer(heka):
    """message_signer = "test" receives exactly the verified messages."""
    d = heka(SPLITTER_FORM)
    md5, exp_md5, uuids_md5 = expected_counts("go-client-gen-md5")
    none, exp_none, uuids_none = expected_counts("go-client-gen-none")
    send_tcp(d, none)
    send_tcp(d, md5)
    d.wait_bytes(len(md5) + len(none))
    d.wait_out_events(len(uuids_md5), "signed")
    assert [line["record"]["Uuid"] for line in d.signed_lines()] == uuids_md5
    d.wait_out_events(len(uuids_md5) + len(uuids_none))
    assert len(d.lines()) == len(uuids_md5) + len(uuids_none)


def test_default_splitter_has_no_signers(heka):
    """Without signer keys every signed message is from an unknown signer (as hekad)."""
    data, exp, _ = expected_counts("go-client-gen-md5", keys={})
    assert exp["messages"] == 0 and exp["unknown_signers"] == 7
    d = heka('[in]\ntype = "TcpInput"\naddress = "127.0.0.1:@PORT@"\n')
    send_tcp(d, data)
    check_counts(d, exp, [])


def test_hekaframingsplitter_table_replaces_the_builtin(heka):
    """A [HekaFramingSplitter] table is what the default `splitter` name resolves to."""
    data, exp, uuids = expected_counts("go-client-gen-md5")
    d = heka('[in]\ntype = "TcpInput"\naddress = "127.0.0.1:@PORT@"\n\n'
             '[HekaFramingSplitter]\n[HekaFramingSplitter.signer.test_0]\nhmac_key = "@KEY0@"\n')
    send_tcp(d, data)
    check_counts(d, exp, uuids)


def test_skip_authentication_delivers_badly_signed(heka):
    data, frames = load_vector("go-client-gen-md5-badkey")
    d = heka('[in]\ntype = "TcpInput"\naddress = "127.0.0.1:@PORT@"\nsplitter = "s"\n\n'
             '[s]\ntype = "HekaFramingSplitter"\nskip_authentication = true\n'
             '[s.signer.test_0]\nhmac_key = "@KEY0@"\n')
    send_tcp(d, data)
    got = d.wait_bytes(len(data))
    assert got["messages"] == len(frames) - sum(1 for f in frames if "error" in f)
    assert got["bad_signatures"] == 0
    d.wait_out_events(got["messages"])
    assert d.signed_lines() == []  # delivered, but as unsigned


def test_drops_are_logged_at_most_once_per_second(heka):
    recs = records("go-client-gen-md5-badkey")
    d = heka(SPLITTER_FORM)
    start = time.monotonic()
    s = d.connect()
    for _ in range(100):  # one read, so one log decision, per record at best
        for rec in recs:
            s.send(rec)
    s.close()
    got = d.wait_bytes(100 * sum(map(len, recs)))
    elapsed = time.monotonic() - start
    assert got["bad_signatures"] == 100 * len(recs)
    logged = [line for line in d.stderr().splitlines() if "wrong HMAC digest" in line]
    assert logged and "e.g. signer test_0" in logged[0]
    assert len(logged) <= 1 + int(elapsed), logged


def test_signer_without_digest_is_unsigned(heka):
    """hekad would take this header as signed by "test"; ferry takes it as unsigned."""
    body = bodies("go-client-gen-none")[1]
    claim = b"\x22\x04test\x28\x00"  # hmac_signer = "test", hmac_key_version = 0, no hmac
    data = frame(body, claim)
    d = heka(SPLITTER_FORM)
    send_tcp(d, data)
    got = d.wait_bytes(len(data))
    assert (got["messages"], got["bad_signatures"], got["unknown_signers"]) == (1, 0, 0)
    d.wait_out_events(1)
    assert len(d.lines()) == 1
    assert d.signed_lines() == []


def test_undecodable_body_is_counted(heka):
    good = bodies("go-client-gen-none")[0]
    data = frame(b"\x0a\xff") + frame(good)  # a length-delimited field cut short
    d = heka(SPLITTER_FORM)
    send_tcp(d, data)
    got = d.wait_bytes(len(data))
    assert (got["records"], got["decode_errors"], got["messages"]) == (2, 1, 1)


def test_raised_max_message_size_takes_the_oversize_message(heka):
    data, exp, uuids = expected_counts("go-client-gen-oversize-none", max_message_size=128 * 1024)
    assert exp["messages"] == 1 and exp["oversize_records"] == 0
    d = heka('[ferry]\nmax_message_size = "128KiB"\n\n' + SPLITTER_FORM)
    send_tcp(d, data)
    check_counts(d, exp, uuids)


def test_incomplete_record_at_close_is_skipped(heka):
    rec = records("go-client-gen-none")[1]
    d = heka(SPLITTER_FORM)
    send_tcp(d, rec + rec[:20])
    got = d.wait_bytes(len(rec) + 20)
    assert got["messages"] == 1
    wait_for(lambda: d.input_stats().get("skipped_bytes") == 20, "the cut record counted")


# ------------------------------------------------------------------------------------------
# UDP

UDP_INPUT = """
[in]
type = "UdpInput"
address = "127.0.0.1:@UDP@"
splitter = "signed_splitter"
decoder = "ProtobufDecoder"

[signed_splitter]
type = "HekaFramingSplitter"
[signed_splitter.signer.test_0]
hmac_key = "@KEY0@"
"""


def send_udp(d, datagrams):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for dg in datagrams:
        s.sendto(dg, ("127.0.0.1", d.udp_port))
    s.close()


def test_udp_one_record_per_datagram(heka):
    recs = records("go-client-gen-none")
    d = heka(UDP_INPUT)
    send_udp(d, recs)
    got = d.wait_bytes(sum(map(len, recs)))
    assert (got["datagrams"], got["messages"], got["skipped_bytes"]) == (len(recs), len(recs), 0)
    d.wait_out_events(len(recs))
    _, _, uuids = expected_counts("go-client-gen-none")
    assert sorted(line["record"]["Uuid"] for line in d.lines()) == sorted(uuids)


def test_udp_several_records_per_datagram(heka):
    data, exp, uuids = expected_counts("go-client-gen-md5")
    d = heka(UDP_INPUT)
    send_udp(d, [data])
    got = d.wait_bytes(len(data))
    assert (got["datagrams"], got["messages"]) == (1, exp["messages"])
    d.wait_out_events(len(uuids))
    assert [line["record"]["Uuid"] for line in d.lines()] == uuids
    assert [line["record"]["Uuid"] for line in d.signed_lines()] == uuids


def test_udp_records_never_join_across_datagrams(heka):
    rec = records("go-client-gen-none")[1]
    cut = len(rec) // 2
    d = heka(UDP_INPUT)
    send_udp(d, [rec[:cut], rec[cut:], rec + rec[:10]])
    got = d.wait_bytes(2 * len(rec) + 10)
    assert got["datagrams"] == 3
    assert got["messages"] == 1
    # The first half waits for a body that is not in its datagram and the second half has
    # no header: both are dropped whole, as is the cut copy after the whole record.
    assert got["skipped_bytes"] == len(rec) + 10


def test_udp_bad_signature(heka):
    data, exp, _ = expected_counts("go-client-gen-md5-badkey")
    d = heka(UDP_INPUT)
    send_udp(d, records("go-client-gen-md5-badkey"))
    got = d.wait_bytes(len(data))
    assert (got["messages"], got["bad_signatures"]) == (0, exp["bad_signatures"])


# ------------------------------------------------------------------------------------------
# hekad configs and config errors

HEKAD_TOML = """
[hekad]
max_message_size = 65536

[TcpInput]
address = "127.0.0.1:@PORT@"
splitter = "HekaFramingSplitter"
decoder = "ProtobufDecoder"
keep_alive = true
keep_alive_period = 30

[ProtobufDecoder]

[HekaFramingSplitter]
use_message_bytes = true
min_buffer_size = 8192
[HekaFramingSplitter.signer.test_0]
hmac_key = "@KEY0@"

[ProtobufEncoder]
"""


def test_hekad_style_config_loads_and_runs(heka, tmp_path):
    data, exp, uuids = expected_counts("go-client-gen-md5")
    d = heka(HEKAD_TOML, input_name="TcpInput")
    r = subprocess.run([FERRYD, "-c", d.config_path, "--check-config"], capture_output=True,
                       text=True, timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    s = d.connect()
    s.sendall(data)
    s.close()
    got = d.wait_bytes(len(data))
    assert (got["messages"], got["bad_signatures"]) == (exp["messages"], 0)
    d.wait_out_events(len(uuids))
    assert [line["record"]["Uuid"] for line in d.lines()] == uuids
    assert d.stop() == 0


def write_config(tmp_path, text):
    path = tmp_path / "ferry.toml"
    path.write_text(text)
    return str(path)


def run_ferryd(*args):
    return subprocess.run([FERRYD, *args], capture_output=True, text=True, timeout=DEADLINE)


@pytest.mark.parametrize("text, where, words", [
    ("[LogstreamerInput]\nlog_directory = \"/var/log\"\n", "LogstreamerInput.type",
     "unknown plugin type 'LogstreamerInput'"),
    ("[in]\ntype = \"TcpInput\"\naddress = \"nowhere\"\n", "in.address", "host:port"),
    ("[in]\ntype = \"TcpInput\"\naddress = \"example.com:5565\"\n", "in.address",
     "not an IP address"),
    ("[in]\ntype = \"TcpInput\"\nnet = \"unix\"\naddress = \"/tmp/x\"\n", "in.net", "unix"),
    ("[in]\ntype = \"TcpInput\"\nnet = \"tcp6\"\naddress = \"127.0.0.1:5565\"\n", "in.address",
     "IPv6"),
    ("[in]\ntype = \"TcpInput\"\nuse_tls = true\n", "in.use_tls", "TLS"),
    ("[in]\ntype = \"TcpInput\"\nsend_decode_failures = true\n", "in.send_decode_failures",
     "not supported"),
    ("[in]\ntype = \"TcpInput\"\n[in.signer.test_00]\nhmac_key = \"k\"\n", "in.signer.test_00",
     "leading zeros"),
    ("[in]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:5565\"\n", "in.splitter",
     "NullSplitter"),
    ("[in]\ntype = \"UdpInput\"\naddress = \"127.0.0.1:5565\"\nnet = \"unixgram\"\n"
     "splitter = \"HekaFramingSplitter\"\ndecoder = \"ProtobufDecoder\"\n", "in.net", "unixgram"),
    ("[s]\ntype = \"HekaFramingSplitter\"\nuse_message_bytes = false\n", "s.use_message_bytes",
     "only true"),
    ("[ProtobufDecoder]\nlog_decode_failures = true\n", "ProtobufDecoder.log_decode_failures",
     "unknown key"),
])
def test_config_errors_at_load(tmp_path, text, where, words):
    path = write_config(tmp_path, text)
    r = run_ferryd("-c", path, "--check-config")
    assert r.returncode == 1, r.stdout
    assert f"key '{where}'" in r.stderr and words in r.stderr, r.stderr
    assert path in r.stderr


@pytest.mark.parametrize("text, where, words", [
    ("[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\ndecoder = \"JsonDecoder\"\n",
     "in.decoder", "JsonDecoder"),
    ("[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\ndecoder = \"ProtobufEncoder\"\n\n"
     "[ProtobufEncoder]\n", "in.decoder", "a ProtobufEncoder"),
    ("[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\nsplitter = \"mine\"\n",
     "in.splitter", "no splitter table [mine]"),
    ("[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\nsplitter = \"ProtobufDecoder\"\n\n"
     "[ProtobufDecoder]\n", "in.splitter", "needs a HekaFramingSplitter"),
    ("[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\nsplitter = \"s\"\n"
     "[in.signer.test_0]\nhmac_key = \"a\"\n\n[s]\ntype = \"HekaFramingSplitter\"\n"
     "[s.signer.test_0]\nhmac_key = \"b\"\n", "in.signer.test_0", "different keys"),
])
def test_reference_errors_at_start(tmp_path, text, where, words):
    """Names that refer to other tables are resolved when the input is built."""
    path = write_config(tmp_path, text + "\n[out]\ntype = \"NullOutput\"\nmatch = \"**\"\n")
    r = run_ferryd("-c", path)
    assert r.returncode == 1
    assert f"key '{where}'" in r.stderr and words in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------
# Limits and lifecycle


def test_max_connections(heka):
    """Past max_connections a new connection waits in the backlog (not closed) and is
    served once a slot frees."""
    d = heka(SPLITTER_FORM.replace('splitter = "signed_splitter"',
                                   'splitter = "signed_splitter"\nmax_connections = 1'))
    first = d.connect()
    wait_for(lambda: d.input_stats().get("connections_accepted") == 1, "first connection")
    second = d.connect()
    rec = records("go-client-gen-none")[0]
    second.sendall(rec)
    wait_for(lambda: d.input_stats().get("accept_paused") == 1, "accept paused")
    st = d.input_stats()
    assert (st["connections_accepted"], st["connections_rejected"], st["bytes"]) == (1, 0, 0)
    first.sendall(rec)
    d.wait_bytes(len(rec))
    assert d.input_stats()["messages"] == 1
    first.close()
    # The first slot frees: the waiting connection is accepted and its record read.
    d.wait_bytes(2 * len(rec))
    st = d.input_stats()
    assert (st["connections_accepted"], st["messages"]) == (2, 2)
    second.close()


def test_idle_timeout(heka):
    d = heka(SPLITTER_FORM.replace('splitter = "signed_splitter"',
                                   'splitter = "signed_splitter"\nidle_timeout = "200ms"'))
    s = d.connect()
    assert wait_closed(s)
    assert d.input_stats()["connections_idle_closed"] == 1
    s.close()


def test_graceful_stop_drains_what_was_sent(heka):
    """Bytes the kernel already holds at SIGTERM are read and routed before ferryd exits.
    (Small enough to sit whole in the receive buffer once sendall returns.)"""
    data, exp, uuids = expected_counts("go-client-gen-sha1")
    d = heka(SPLITTER_FORM)
    s = d.connect()
    wait_for(lambda: d.input_stats().get("connections_accepted") == 1, "the connection")
    s.sendall(data)
    assert d.stop() == 0
    s.close()
    final = [line for line in d.stderr().splitlines() if "stopped: {" in line][-1]
    counters = json.loads(final[final.index("stopped: ") + len("stopped: "):])["in"]
    assert (counters["bytes"], counters["messages"]) == (len(data), exp["messages"])
    assert [line["record"]["Uuid"] for line in d.lines()] == uuids
