# message_matcher end to end: outputs selected by Heka matcher expressions over Fluentd
# events (tag patterns combined with Fields[...] tests on nested maps, arrays, nil and
# binary values), and the `ferryd --match EXPR FILE` tool on forward and Heka files.
import json
import os
import subprocess

import msgpack

from conftest import FERRYD, VECTORS, read_json_lines, wait_for


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def test_outputs_selected_by_message_matcher(ferryd_factory, tmp_path):
    errors = str(tmp_path / "errors.jsonl")
    picky = str(tmp_path / "picky.jsonl")
    extra = f"""
[errors]
type = "FileOutput"
message_matcher = 'Type =~ /^app\\./ && Fields[status] >= 500'
path = "{errors}"

[picky]
type = "FileOutput"
match = "app.**"
message_matcher = '''Fields[user] == '{{"id":7}}' || Fields[tags][0][1] == 'b' || Fields[raw] == 'xyz' || Fields[gone] != NIL'''
path = "{picky}"
"""
    d = ferryd_factory(extra_config=extra)
    events = [
        ("app.web", {"status": 503, "user": {"id": 7}}),          # errors, picky (nested map)
        ("app.web", {"status": 200, "tags": ["a", "b"]}),          # picky (array element)
        ("app.web", {"status": 200, "raw": b"xyz"}),               # picky (bin as string)
        ("app.web", {"status": 200, "gone": None}),                # nil is absent: nobody
        ("sys.kern", {"status": 500, "user": {"id": 7}}),          # neither: wrong tag
        ("app.api", {"status": "500"}),                            # string vs number: no
    ]
    s = d.connect()
    s.sendall(b"".join(pack([tag, 1700000000 + k, rec]) for k, (tag, rec) in enumerate(events)))
    d.wait_lines(len(events))  # the "**" FileOutput sees everything
    wait_for(lambda: len(read_json_lines(errors)) == 1 and len(read_json_lines(picky)) == 3,
             "the matcher outputs to receive their events")
    assert [l["record"] for l in read_json_lines(errors)] == [{"status": 503, "user": {"id": 7}}]
    assert [l["record"] for l in read_json_lines(picky)] == [
        {"status": 503, "user": {"id": 7}},
        {"status": 200, "tags": ["a", "b"]},
        {"status": 200, "raw": "xyz"},
    ]
    s.close()
    assert d.stop() == 0
    # Nothing more arrived after the stop either.
    assert len(read_json_lines(errors)) == 1 and len(read_json_lines(picky)) == 3


def test_forward_chunk_split_between_outputs_keeps_order_and_acks(ferryd_factory, tmp_path):
    slow = str(tmp_path / "5xx.jsonl")
    extra = f"""
[five]
type = "FileOutput"
message_matcher = "Fields[status] >= 500"
path = "{slow}"
"""
    d = ferryd_factory(extra_config=extra)
    entries = [[1700000000 + k, {"n": k, "status": 500 if k % 3 == 0 else 200}] for k in range(30)]
    s = d.connect()
    s.sendall(pack(["app.split", entries, {"chunk": "c-split"}]))
    s.settimeout(15)
    ack = msgpack.unpackb(s.recv(1024), raw=False)
    assert ack == {"ack": "c-split"}
    # The ack came after both outputs had their share: both files are complete now.
    assert [l["record"]["n"] for l in read_json_lines(slow)] == list(range(0, 30, 3))
    assert [l["record"]["n"] for l in d.lines()] == list(range(30))


def run_match(expr, path):
    return subprocess.run([FERRYD, "--match", expr, path], capture_output=True, timeout=30)


def test_match_tool_on_forward_capture():
    path = os.path.join(VECTORS, "forward", "pylogger-eventtime.bin")
    r = run_match("Type == 'vec.pylogger.ev' && Fields[n] == 1", path)
    assert r.returncode == 0
    lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert len(lines) == 1
    assert lines[0]["record"]["msg"] == "hello"
    assert r.stderr.decode().strip() == "ferryd: 1 of 3 events matched"


def test_match_tool_on_heka_capture():
    path = os.path.join(VECTORS, "heka", "hekad-tcpoutput-none.bin")
    everything = run_match("TRUE", path)
    assert everything.returncode == 0
    total = len(everything.stdout.decode().splitlines())
    assert total > 0
    assert everything.stderr.decode().strip() == f"ferryd: {total} of {total} events matched"
    typed = run_match("Type == 'test.headers' && Severity == 3", path)
    assert typed.returncode == 0
    rows = [json.loads(l) for l in typed.stdout.decode().splitlines()]
    assert rows and all(r["Type"] == "test.headers" and r["Severity"] == 3 for r in rows)


def test_match_tool_reports_bad_expression_with_column(tmp_path):
    f = tmp_path / "empty.bin"
    f.write_bytes(b"")
    r = run_match("Type == ", str(f))
    assert r.returncode == 1
    assert "column 9" in r.stderr.decode()


def test_output_with_bad_matcher_is_a_config_error(tmp_path):
    conf = tmp_path / "bad.toml"
    conf.write_text('[n]\ntype = "NullOutput"\nmessage_matcher = "Type = 1"\n')
    r = subprocess.run([FERRYD, "-c", str(conf), "--check-config"], capture_output=True, timeout=30)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"{conf}:3: key 'n.message_matcher': invalid matcher: column" in err, err
