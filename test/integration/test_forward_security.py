# ForwardInput with [in.security]: the shared-key handshake against the real ferryd. A
# Python client written from forward.md §1.8 does HELO → PING → PONG; wrong keys, wrong
# users, data before the PING, JSON and slow clients are refused; HELO and failure PONG
# are compared with Fluentd's bytes from shared/vectors/forward.
import hashlib
import json
import os
import socket
import subprocess
import time

import msgpack
import pytest

from conftest import DEADLINE, FERRYD, VECTORS, recv_exactly, wait_closed, wait_for

KEY = "vector-key"
SERVER_HOST = "ferry-agg"
CAPTURES = os.path.join(VECTORS, "forward")


def security(user_auth=False, users=(), hostname=SERVER_HOST, key=KEY, before=""):
    """input_options: `before` (the input's own keys), then the [in.security] sub-table
    (a TOML sub-table must come after its parent's keys; conftest puts [file] after it)."""
    text = f'{before}\n[in.security]\nself_hostname = "{hostname}"\nshared_key = "{key}"\n'
    if user_auth:
        text += "user_auth = true\n"
    for user, password in users:
        text += f'\n[[in.security.users]]\nusername = "{user}"\npassword = "{password}"\n'
    return text


def sha512_hex(*parts):
    h = hashlib.sha512()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
    return h.hexdigest()


def capture_objects(name, side):
    """(raw bytes of each msgpack object) of one direction of a capture."""
    with open(os.path.join(CAPTURES, f"{name}.{side}.bin"), "rb") as f:
        data = f.read()
    u = msgpack.Unpacker(raw=True)
    u.feed(data)
    out, pos = [], 0
    for _ in u:
        end = u.tell()
        out.append(data[pos:end])
        pos = end
    return out


class Client:
    """The client side of the handshake, per forward.md §1.8 (not ferry's code)."""

    def __init__(self, sock, hostname="py-client", key=KEY, username="", password="",
                 salt=None, fields_as_bin=False):
        self.sock = sock
        self.hostname = hostname
        self.key = key
        self.username = username
        self.password = password
        # Fluentd's salt: SecureRandom.hex(16), 32 hex chars.
        self.salt = salt if salt is not None else os.urandom(16).hex().encode()
        self.fields_as_bin = fields_as_bin
        self.unpacker = msgpack.Unpacker(raw=True)
        self.helo_raw = b""
        self.nonce = self.auth = b""

    def read(self):
        """The next msgpack object from the server; None on EOF."""
        end = time.monotonic() + DEADLINE
        self.sock.settimeout(DEADLINE)
        while time.monotonic() < end:
            try:
                return next(self.unpacker)
            except StopIteration:
                pass
            data = self.sock.recv(65536)
            if not data:
                return None
            if not self.helo_raw:
                self.helo_raw = data
            self.unpacker.feed(data)
        pytest.fail("no message from the server")

    def read_helo(self):
        helo = self.read()
        assert helo is not None and helo[0] == b"HELO"
        self.nonce = helo[1][b"nonce"]
        self.auth = helo[1].get(b"auth", b"")
        return helo

    def ping_bytes(self):
        digest = sha512_hex(self.salt, self.hostname, self.nonce, self.key)
        user, pw = b"", b""
        if self.auth:
            user = self.username.encode()
            pw = sha512_hex(self.auth, self.username, self.password).encode()
        fields = [b"PING", self.hostname.encode(), self.salt, digest.encode(), user, pw]
        # use_bin_type=False packs bytes as str (as Fluent Bit requires), True as bin.
        return msgpack.packb(fields, use_bin_type=self.fields_as_bin)

    def handshake(self):
        """HELO → PING → PONG; returns the PONG (a list of raw values)."""
        self.read_helo()
        self.sock.sendall(self.ping_bytes())
        return self.read()

    def expected_pong(self, server_hostname=SERVER_HOST):
        digest = sha512_hex(self.salt, server_hostname, self.nonce, self.key)
        return [b"PONG", True, b"", server_hostname.encode(), digest.encode()]


def packed_forward(tag, n, chunk):
    entries = b"".join(msgpack.packb([1700000000 + i, {"n": i}]) for i in range(n))
    return msgpack.packb([tag, entries, {"size": n, "chunk": chunk}], use_bin_type=True)


def lines_for(tag, n):
    return [{"tag": tag, "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z",
                                                time.gmtime(1700000000 + i)),
             "record": {"n": i}} for i in range(n)]


def assert_counters(d, **expected):
    stats = d.stats()["in"]
    for name, value in expected.items():
        assert stats.get(name, 0) == value, (name, stats)


def test_helo_is_fluentds_shape(ferryd_factory):
    # Fluentd's HELO from the capture: bin8(16) nonce, bin8(16) auth, keepalive true.
    fluentd_helo = capture_objects("fluentd-in-secure", "server")[0]
    f = msgpack.unpackb(fluentd_helo, raw=False)
    assert f[0] == "HELO" and isinstance(f[1]["nonce"], bytes)
    d = ferryd_factory(input_options=security(user_auth=True, users=[("u", "p")]))
    s = d.connect()
    c = Client(s)
    helo = c.read_helo()
    assert len(c.nonce) == 16 and len(c.auth) == 16
    ours = c.helo_raw[:len(fluentd_helo)]
    # With Fluentd's nonce and auth put in, the bytes are Fluentd's: same types, order.
    assert fluentd_helo.replace(f[1]["nonce"], c.nonce).replace(f[1]["auth"], c.auth) == ours
    typed = msgpack.unpackb(ours, raw=False)  # raw=False: str → str, bin → bytes
    assert typed == ["HELO", {"nonce": c.nonce, "auth": c.auth, "keepalive": True}]
    assert helo[1][b"keepalive"] is True

    # A second connection gets a fresh nonce.
    c2 = Client(d.connect())
    c2.read_helo()
    assert c2.nonce != c.nonce and c2.auth != c.auth


def test_helo_without_user_auth_has_empty_auth(ferryd_factory):
    d = ferryd_factory(input_options=security())
    c = Client(d.connect())
    c.read_helo()
    assert len(c.nonce) == 16
    assert c.auth == b""
    typed = msgpack.unpackb(c.helo_raw, raw=False)
    assert typed == ["HELO", {"nonce": c.nonce, "auth": b"", "keepalive": True}]


@pytest.mark.parametrize("style", ["fluentd", "fluentbit", "bin-fields"])
def test_handshake_then_events_are_acked(ferryd_factory, style):
    d = ferryd_factory(input_options=security())
    s = d.connect()
    if style == "fluentd":
        c = Client(s)
    elif style == "fluentbit":  # salt: 16 raw bytes, sent as a str that is not UTF-8
        c = Client(s, salt=b"\xff\x00\x80" + os.urandom(13))
    else:  # every PING field a bin: also accepted (str or bin, like Fluentd)
        c = Client(s, fields_as_bin=True)
    pong = c.handshake()
    assert pong == c.expected_pong()
    s.sendall(packed_forward("sec.t", 3, "chunk-1"))
    assert c.read() == {b"ack": b"chunk-1"}
    assert d.lines() == lines_for("sec.t", 3)
    d.wait_counter("handshakes", 1)
    assert_counters(d, handshakes=1, auth_failures=0, handshake_errors=0, events=3, acks_sent=1)
    s.close()


def test_ping_and_data_in_one_write(ferryd_factory):
    """A client that does not wait for the PONG: the PONG still comes before the ack."""
    d = ferryd_factory(input_options=security())
    s = d.connect()
    c = Client(s)
    c.read_helo()
    s.sendall(c.ping_bytes() + packed_forward("pipe.t", 2, "c1") + packed_forward("pipe.t", 1, "c2"))
    assert c.read() == c.expected_pong()
    assert c.read() == {b"ack": b"c1"}
    assert c.read() == {b"ack": b"c2"}
    assert len(d.lines()) == 3


def test_wrong_key_gets_fluentds_failure_pong_and_close(ferryd_factory):
    d = ferryd_factory(input_options=security())
    s = d.connect()
    c = Client(s, key="wrong-key")
    c.read_helo()
    s.sendall(c.ping_bytes() + packed_forward("no.t", 1, "never"))
    fluentd_pong = capture_objects("fluentd-in-secure-wrongkey", "server")[1]
    assert msgpack.unpackb(fluentd_pong) == ["PONG", False, "shared_key mismatch", "", ""]
    assert recv_exactly(s, len(fluentd_pong)) == fluentd_pong  # byte for byte
    assert wait_closed(s)
    d.wait_counter("auth_failures", 1)
    assert_counters(d, auth_failures=1, handshakes=0, events=0, acks_sent=0)
    assert d.lines() == []
    assert "shared_key mismatch" in d.stderr() and 'hostname "py-client"' in d.stderr()


def test_replayed_fluentd_ping_is_refused(ferryd_factory):
    """Fluentd's real PING (fluentd-out-secure) was made for another nonce: a replay."""
    d = ferryd_factory(input_options=security(hostname="capture-server"))
    ping = capture_objects("fluentd-out-secure", "client")[0]
    assert msgpack.unpackb(ping)[1] == "fluentd-fwd"
    s = d.connect()
    c = Client(s)
    c.read_helo()
    s.sendall(ping)
    assert c.read() == [b"PONG", False, b"shared_key mismatch", b"", b""]
    assert wait_closed(s)
    d.wait_counter("auth_failures", 1)


def test_user_auth(ferryd_factory):
    d = ferryd_factory(input_options=security(
        user_auth=True, users=[("alice", "wonderland"), ("bob", "builder")]))
    # Right user and password: events pass.
    s = d.connect()
    c = Client(s, username="bob", password="builder")
    assert c.handshake() == c.expected_pong()
    s.sendall(packed_forward("user.t", 1, "u1"))
    assert c.read() == {b"ack": b"u1"}
    # Wrong password, unknown user, no user at all: refused.
    for user, password in [("bob", "wonderland"), ("carol", "x"), ("", "")]:
        s2 = d.connect()
        c2 = Client(s2, username=user, password=password)
        assert c2.handshake() == [b"PONG", False, b"username/password mismatch", b"", b""]
        assert wait_closed(s2)
    # A wrong key is reported as such even with a right user (the key is checked first).
    s3 = d.connect()
    c3 = Client(s3, key="nope", username="alice", password="wonderland")
    assert c3.handshake()[2] == b"shared_key mismatch"
    d.wait_counter("auth_failures", 4)
    assert_counters(d, auth_failures=4, handshakes=1, events=1)
    assert d.lines() == lines_for("user.t", 1)


@pytest.mark.parametrize("first", ["data", "nil", "short-ping"])
def test_anything_but_a_ping_first_closes(ferryd_factory, first):
    d = ferryd_factory(input_options=security())
    s = d.connect()
    c = Client(s)
    c.read_helo()
    payload = {
        "data": packed_forward("early.t", 2, "early"),
        "nil": b"\xc0",  # the TCP heartbeat is not a PING either
        "short-ping": msgpack.packb(["PING", "py-client", "salt", "digest", ""]),
    }[first]
    s.sendall(payload)
    assert c.read() == [b"PONG", False, b"invalid ping message", b"", b""]
    assert c.read() is None  # closed, no ack
    d.wait_counter("handshake_errors", 1)
    assert_counters(d, handshake_errors=1, auth_failures=0, frames=0, events=0, heartbeats_tcp=0)
    assert d.lines() == []


def test_json_connection_cannot_authenticate(ferryd_factory):
    d = ferryd_factory(input_options=security())
    s = d.connect()
    c = Client(s)
    c.read_helo()
    s.sendall(json.dumps(["json.t", 1700000000, {"a": 1}, {"chunk": "j"}]).encode())
    assert c.read() is None  # closed without a PONG: the client speaks JSON
    d.wait_counter("handshake_errors", 1)
    assert_counters(d, json_connections=0, events=0)
    assert d.lines() == []


def test_oversized_bytes_before_the_ping_close(ferryd_factory):
    d = ferryd_factory(input_options=security())
    s = d.connect()
    c = Client(s)
    c.read_helo()
    # A bin32 announcing 16 MiB (under max_frame_size): refused after 64 KiB, not buffered.
    s.sendall(b"\x96\xa4PING\xc6" + (16 << 20).to_bytes(4, "big") + b"x" * (70 * 1024))
    assert c.read() == [b"PONG", False, b"invalid ping message", b"", b""]
    assert wait_closed(s)
    d.wait_counter("handshake_errors", 1)


def test_handshake_must_finish_within_idle_timeout(ferryd_factory):
    d = ferryd_factory(input_options=security(before='idle_timeout = "500ms"'))
    s = d.connect()
    c = Client(s)
    c.read_helo()
    s.sendall(c.ping_bytes()[:20])  # half a PING: bytes arrive, the handshake does not finish
    assert c.read() is None
    d.wait_counter("handshake_timeouts", 1)
    assert_counters(d, handshake_timeouts=1, connections_idle_closed=0, handshakes=0)
    # A client that completes it in time is then under the ordinary idle timeout.
    s2 = d.connect()
    c2 = Client(s2)
    assert c2.handshake() == c2.expected_pong()
    s2.sendall(packed_forward("late.t", 1, "l1"))
    assert c2.read() == {b"ack": b"l1"}
    assert c2.read() is None  # idle close, counted as such
    d.wait_counter("connections_idle_closed", 1)
    assert_counters(d, handshake_timeouts=1, handshakes=1)


def _check_config(tmp_path, security_text):
    path = tmp_path / "ferry.toml"
    path.write_text('[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:24224"\n'
                    + security_text
                    + '\n[out]\ntype = "NullOutput"\nmatch = "**"\n')
    return subprocess.run([FERRYD, "-c", str(path), "--check-config"], capture_output=True,
                          timeout=DEADLINE)


@pytest.mark.parametrize("text,key", [
    ('[in.security]\nself_hostname = "a"\n', "in.security.shared_key"),
    ('[in.security]\nshared_key = "k"\n', "in.security.self_hostname"),
    ('[in.security]\nself_hostname = "a"\nshared_key = "k"\nuser_auth = true\n',
     "in.security.users"),
    ('[in.security]\nself_hostname = "a"\nshared_key = "k"\nuser_auth = true\n'
     '[[in.security.users]]\nusername = "u"\n', "in.security.users[0].password"),
])
def test_config_errors_name_the_key(tmp_path, text, key):
    r = _check_config(tmp_path, text)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert f"key '{key}'" in err and "ferry.toml:" in err


def test_check_config_hides_secrets(tmp_path):
    r = _check_config(tmp_path, security(user_auth=True, users=[("alice", "pw-secret")],
                                         key="key-secret"))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode() + r.stderr.decode()
    assert "alice" in out
    assert "key-secret" not in out and "pw-secret" not in out
