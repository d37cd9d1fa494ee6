# Heka → Fluentd content, field by field: every message of the real Heka captures goes
# through ferry's TcpInput into a FileOutput, and each line must be exactly the bridge.md
# conversion of the decode in the capture's .json (tag, time to the ns, header keys,
# Fields with their types, several values, duplicate names, bytes, representation json).
import datetime
import json
import os
import re

import pytest

from conftest import VECTORS
from test_heka_input import SPLITTER_FORM, heka, send_tcp  # noqa: F401 (fixture)

HEKA = os.path.join(VECTORS, "heka")


def bytes_as_json_string(raw):
    """How ferry writes bytes that are not text: valid UTF-8 runs as they are, every other
    byte as the code point of its value (\\u00XX)."""
    out, i = [], 0
    while i < len(raw):
        for n in (4, 3, 2, 1):
            chunk = raw[i:i + n]
            if len(chunk) == n:
                try:
                    text = chunk.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if n == 1 and raw[i] >= 0x80:
                    continue
                out.append(text)
                i += n
                break
        else:
            out.append(chr(raw[i]))
            i += 1
    return "".join(out)


class Truncated:
    """A value the capture's .json shortened to `hex:<prefix>...(N bytes)`: equal to a
    string of N bytes' worth that starts with the prefix."""

    def __init__(self, prefix, size):
        self.prefix, self.size = prefix, size

    def __eq__(self, other):
        return (isinstance(other, str) and other.startswith(self.prefix) and
                len(other.encode("latin-1", "replace")) == self.size)

    def __repr__(self):
        return f"Truncated({self.prefix[:8]!r}..., {self.size})"


TRUNCATED = re.compile(r"^(hex:)?(.*)\.\.\.\((\d+) bytes\)$", re.S)


def shortened(v):
    """A Truncated for a value the .json shortened, else None."""
    m = TRUNCATED.match(v) if isinstance(v, str) else None
    if not m:
        return None
    head, size = m.group(2), int(m.group(3))
    if m.group(1):  # hex: the count is of hex digits
        head, size = bytes_as_json_string(bytes.fromhex(head[:len(head) // 2 * 2])), size // 2
    return Truncated(head, size)


def field_value(field, v):
    if shortened(v):
        return shortened(v)
    if field["value_type"] == "BYTES":
        return bytes_as_json_string(bytes.fromhex(v[4:]) if isinstance(v, str) and
                                    v.startswith("hex:") else v.encode())
    if field["value_type"] == "STRING":
        if isinstance(v, str) and v.startswith("hex:"):
            v = bytes_as_json_string(bytes.fromhex(v[4:]))
        if field.get("representation") == "json":
            try:
                return json.loads(v)
            except ValueError:
                return v
    if field["value_type"] == "DOUBLE":
        return float(v)
    return v


def expected_line(msg):
    """bridge.md's Heka → Fluentd for one decoded message of a capture's .json."""
    rec = {}
    if "uuid" in msg and len(msg["uuid"]) == 36:
        rec["Uuid"] = msg["uuid"]
    for key, name in (("logger", "Logger"), ("severity", "Severity"), ("payload", "Payload"),
                      ("env_version", "EnvVersion"), ("pid", "Pid"), ("hostname", "Hostname")):
        if key == "severity" and msg.get("severity_on_wire") is False:
            continue
        if key in msg:
            rec[name] = shortened(msg[key]) or msg[key]
    grouped = {}
    for f in msg.get("fields", []):
        grouped.setdefault(f["name"], []).append(f)
    for name, occurrences in grouped.items():
        values = [field_value(f, v) for f in occurrences for v in f.get("values", [])]
        single = len(occurrences) == 1 and len(occurrences[0].get("values", [])) == 1
        rec[name] = values[0] if single else values
    ts = msg.get("timestamp", 0)
    sec, ns = divmod(ts, 10**9)
    when = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=sec)
    return {"tag": msg.get("type") or "heka",
            "time": when.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z",
            "record": rec}


@pytest.mark.parametrize("name", ["go-client-gen-none", "go-client-gen-sha1", "heka-inject-1",
                                  "flood-fixed_unsigned", "flood-variable_unsigned",
                                  "hekad-tcpoutput-from-heka-py-tcp"])
def test_capture_messages_become_the_bridge_records(heka, name):
    with open(os.path.join(HEKA, name + ".bin"), "rb") as f:
        data = f.read()
    expected = []
    with open(os.path.join(HEKA, name + ".json")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            frame = json.loads(line)
            if "message" in frame and not frame.get("hmac_check", "").startswith("bad"):
                expected.append(expected_line(frame["message"]))
    assert expected, name
    d = heka(SPLITTER_FORM)
    send_tcp(d, data)
    d.wait_out_events(len(expected))
    got = d.lines()
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"{name} message {k}"
