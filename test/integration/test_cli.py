# The ferryd command line: --version, --check-config, config errors (each names file, line
# and key and says what was expected), aliases and defaults, units, a busy listen address,
# the built-in config and the generated option reference.
import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import DEADLINE, FERRYD, REPO, free_port, wait_for

DEFAULT_CONF = os.path.join(REPO, "conf", "ferry.toml")
OPTION_DOC = os.path.join(REPO, "docs", "configuration.md")


def run(*args, timeout=DEADLINE):
    return subprocess.run([FERRYD, *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, TZ="UTC"))


def write(tmp_path, text, name="ferry.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def project_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        m = re.search(r"project\(ferry\s+VERSION\s+([0-9][0-9.]*)", f.read())
    assert m, "project version not found in CMakeLists.txt"
    return m.group(1)


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.decode() == f"ferryd {project_version()}\n"
    assert r.stderr == b""


def test_help_lists_every_option():
    r = run("--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for opt in ("--config", "--check-config", "--version", "--log-level", "--pid-file",
                "--print-option-reference", "--print-default-config"):
        assert opt in out


def test_unknown_flag_fails():
    r = run("--no-such-flag")
    assert r.returncode != 0
    assert "--no-such-flag" in r.stderr.decode()


def test_check_config_valid_prints_what_would_run(tmp_path):
    out_file = tmp_path / "never-created.jsonl"
    path = write(tmp_path, f"""[ferry]
shutdown_timeout = "3s"

[in]
type = "ForwardInput"
address = "127.0.0.1:24224"
max_tag_length = 77

[out]
type = "FileOutput"
match = "app.**"
path = "{out_file}"
""")
    r = run("-c", path, "--check-config")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == f"config {path} is valid"
    assert lines[1] == "[ferry]"
    for expected in ("  shutdown_timeout = 3s", '  log_level = "info"', "1 input(s):",
                     f"[in] type = ForwardInput ({path}:5)", '  address = "127.0.0.1:24224"',
                     "  max_tag_length = 77", "  max_frame_size = 64MiB", "  idle_timeout = 10m",
                     "1 output(s):", f"[out] type = FileOutput ({path}:10)",
                     '  match = "app.**"', f'  path = "{out_file}"'):
        assert expected in lines
    # Inputs come before outputs, each followed by its own options.
    assert lines.index("1 input(s):") < lines.index("  max_tag_length = 77") < \
        lines.index("1 output(s):") < lines.index('  match = "app.**"')
    # Checking runs nothing: no output file created.
    assert not out_file.exists()


# ---- config errors ----------------------------------------------------------------------

GOOD_OUT = '\n[out]\ntype = "NullOutput"\nmatch = "**"\n'

# name: (config text, line, key, what the message must say)
ERRORS = {
    "unknown_key": ('[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:1"\nmax_tag_lenght = 8\n',
                    4, "in.max_tag_lenght",
                    "unknown key for ForwardInput (known keys: address, payload_key, udp_heartbeat, "
                    "max_frame_size, max_decompressed_size, max_entries_per_frame, "
                    "max_tag_length, "),
    "wrong_type": ('[in]\ntype = "ForwardInput"\nmax_tag_length = "8"\n', 3,
                   "in.max_tag_length", "expected an integer"),
    "out_of_range": ('[in]\ntype = "ForwardInput"\n\nmax_tag_length = 0\n', 4,
                     "in.max_tag_length", "value 0 is out of range [1, 65535]"),
    "size_out_of_range": ('[in]\ntype = "ForwardInput"\nmax_frame_size = "1023B"\n', 3,
                          "in.max_frame_size", "value 1023 is out of range [1KiB, 2GiB]"),
    "unknown_plugin_type": ('[ferry]\n\n[in]\ntype = "ForwardInptu"\n', 4, "in.type",
                            "unknown plugin type 'ForwardInptu' (inputs: ForwardInput"),
    "table_name_not_a_type": ('[myinput]\naddress = "127.0.0.1:1"\n', 1, "myinput.type",
                              "unknown plugin type 'myinput'"),
    "ferry_and_hekad": ('[ferry]\nshutdown_timeout = "1s"\n\n[hekad]\nlog_level = "info"\n',
                        4, "hekad", "duplicate global table: [ferry] and [hekad]"),
    "output_without_match": ('[out]\ntype = "NullOutput"\n', 2, "out.match",
                             "this output matches nothing: set `match`"),
    "invalid_match_pattern": ('[out]\ntype = "NullOutput"\n\nmatch = "app.{a,b"\n', 4,
                              "out.match", "invalid tag pattern: unbalanced '{'"),
    "invalid_size": ('[in]\ntype = "ForwardInput"\nmax_frame_size = "64XB"\n', 3,
                     "in.max_frame_size", 'expected a size such as 65536 or "64KiB"'),
    "invalid_duration": ('[in]\ntype = "ForwardInput"\nidle_timeout = "10 parsecs"\n', 3,
                         "in.idle_timeout", 'expected a duration such as "250ms"'),
    "invalid_global_duration": ('[ferry]\nshutdown_timeout = "10 parsecs"\n', 2,
                                "ferry.shutdown_timeout", 'expected a duration such as "250ms"'),
    "bad_log_level": ('[ferry]\n\nlog_level = "loud"\n', 3, "ferry.log_level",
                      "expected one of trace, debug, info, warn, error, off"),
    "top_level_key": ('max_connections = 4\n[in]\ntype = "ForwardInput"\n', 1,
                      "max_connections", "top-level keys must be tables"),
    "missing_required": ('[out]\ntype = "FileOutput"\nmatch = "**"\n', 2, "out.path",
                         "required key is missing"),
}


@pytest.mark.parametrize("name", list(ERRORS))
@pytest.mark.parametrize("check", [True, False], ids=["check", "run"])
def test_config_error(tmp_path, name, check):
    text, line, key, what = ERRORS[name]
    path = write(tmp_path, text)
    r = run("-c", path, *(["--check-config"] if check else []), timeout=5)
    assert r.returncode == 1
    assert r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith(f"ferryd: config error: {path}:{line}: key '{key}': "), err
    assert what in err, err
    assert err.count("\n") == 1, "one line per error"


def test_duplicate_toml_table(tmp_path):
    path = write(tmp_path, '[in]\ntype = "ForwardInput"\n\n[in]\naddress = "127.0.0.1:1"\n')
    r = run("-c", path, "--check-config")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith(f"ferryd: config error: {path}:4: TOML syntax error"), err
    assert '("in")' in err and "defined twice" in err


def test_toml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, '[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:1\n')
    r = run("-c", path)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith(f"ferryd: config error: {path}:3: TOML syntax error"), err
    assert ' 3 | address = "127.0.0.1:1' in err


def test_nonexistent_config_file(tmp_path):
    path = str(tmp_path / "no" / "such.toml")
    r = run("-c", path)
    assert r.returncode == 1
    assert r.stderr.decode() == (f"ferryd: config error: {path}:0: cannot read config file: "
                                 "No such file or directory\n")


def test_directory_as_config_file(tmp_path):
    r = run("-c", str(tmp_path), "--check-config")
    assert r.returncode == 1
    assert r.stderr.decode() == (f"ferryd: config error: {tmp_path}:0: cannot read config file: "
                                 "it is a directory\n")


def test_bad_address_fails_at_start(tmp_path):
    path = write(tmp_path, '[in]\ntype = "ForwardInput"\naddress = "localhost"\n' + GOOD_OUT)
    r = run("-c", path)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"{path}:3: key 'in.address': expected an IP address and port" in err, err
    assert 'got "localhost"' in err, err


def test_bad_address_fails_check_config(tmp_path):
    path = write(tmp_path, '[in]\ntype = "ForwardInput"\naddress = "localhost"\n' + GOOD_OUT)
    r = run("-c", path, "--check-config")
    assert r.returncode == 1
    assert f"{path}:3: key 'in.address'" in r.stderr.decode()


def test_non_ip_address_names_file_line_and_key(tmp_path):
    path = write(tmp_path, '[in]\ntype = "ForwardInput"\naddress = "nohost:24224"\n' + GOOD_OUT)
    r = run("-c", path)
    assert r.returncode == 1
    assert f"{path}:3: key 'in.address'" in r.stderr.decode()


def test_bad_log_level_flag(tmp_path):
    path = write(tmp_path, GOOD_OUT)
    r = run("-c", path, "--log-level", "loud")
    assert r.returncode == 1
    assert r.stderr.decode() == "ferryd: unknown --log-level 'loud'\n"


# ---- accepted forms ---------------------------------------------------------------------

def test_hekad_is_an_alias_of_ferry(tmp_path):
    path = write(tmp_path, '[hekad]\nshutdown_timeout = "3s"\nlog_level = "warn"\n' + GOOD_OUT)
    r = run("-c", path, "--check-config")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[1:8] == ["[hekad]", '  base_dir = "/var/lib/ferry"', "  hostname = (unset)",
                          '  log_level = "warn"', "  max_message_size = 64KiB",
                          "  memory_limit = 1GiB", "  shutdown_timeout = 3s"]


def test_type_defaults_to_table_name(tmp_path):
    path = write(tmp_path, '[ForwardInput]\naddress = "127.0.0.1:1"\n\n'
                           '[NullOutput]\nmatch = "**"\n')
    r = run("-c", path, "--check-config")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert f"[ForwardInput] type = ForwardInput ({path}:1)" in out
    assert f"[NullOutput] type = NullOutput ({path}:4)" in out


@pytest.mark.parametrize("key,value,shown", [
    ("max_frame_size", '"64KiB"', "64KiB"),
    ("max_frame_size", "65536", "64KiB"),
    ("max_frame_size", '"1.5MiB"', "1536KiB"),
    ("max_frame_size", '"500KB"', "500000"),
    ("max_decompressed_size", '"2GiB"', "2GiB"),
    ("idle_timeout", '"250ms"', "250ms"),
    ("idle_timeout", '"1m30s"', "90s"),
    ("idle_timeout", '"2h"', "2h"),
    ("idle_timeout", "0", "0"),
])
def test_units_accepted(tmp_path, key, value, shown):
    path = write(tmp_path, f'[in]\ntype = "ForwardInput"\n{key} = {value}\n' + GOOD_OUT)
    r = run("-c", path, "--check-config")
    assert r.returncode == 0, r.stderr
    assert f"  {key} = {shown}" in r.stdout.decode().splitlines()


def test_units_work_in_a_running_daemon(tmp_path):
    # "250ms" really is 250 ms: an idle connection is closed by it.
    port = free_port()
    path = write(tmp_path, f'[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:{port}"\n'
                           f'idle_timeout = "250ms"\nmax_frame_size = "64KiB"\n' + GOOD_OUT)
    with open(tmp_path / "err.log", "wb") as err:
        p = subprocess.Popen([FERRYD, "-c", path], stderr=err, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: "ferryd started" in (tmp_path / "err.log").read_text(), "start")
        s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        s.settimeout(DEADLINE)
        assert s.recv(1) == b""  # closed by the server as idle
        s.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=DEADLINE) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_listen_address_in_use(tmp_path, proto):
    port = free_port()
    if proto == "tcp":
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        what = f"cannot listen on 127.0.0.1:{port}: address already in use"
    else:
        blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blocker.bind(("127.0.0.1", port))
        what = f"cannot bind UDP heartbeat on 127.0.0.1:{port}: address already in use"
    try:
        path = write(tmp_path, f'[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:{port}"\n'
                     + GOOD_OUT)
        r = run("-c", path)
        assert r.returncode == 1
        err = r.stderr.decode()
        assert f"[error] cannot start: [in] {what}" in err, err
        assert "ferryd started" not in err
    finally:
        blocker.close()


def test_udp_heartbeat_off_needs_only_tcp(tmp_path):
    # With udp_heartbeat = false the UDP port may be taken by someone else.
    port = free_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))
    path = write(tmp_path, f'[in]\ntype = "ForwardInput"\naddress = "127.0.0.1:{port}"\n'
                           'udp_heartbeat = false\n' + GOOD_OUT)
    with open(tmp_path / "err.log", "wb") as err:
        p = subprocess.Popen([FERRYD, "-c", path], stderr=err, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: "ferryd started" in (tmp_path / "err.log").read_text()
                 or p.poll() is not None, "start")
        assert p.poll() is None, (tmp_path / "err.log").read_text()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=DEADLINE) == 0
    finally:
        blocker.close()
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- built-in config and option reference -----------------------------------------------

def test_print_default_config_is_conf_ferry_toml():
    r = run("--print-default-config")
    assert r.returncode == 0
    with open(DEFAULT_CONF, "rb") as f:
        assert r.stdout == f.read()


def test_no_config_runs_the_built_in_config():
    # What runs without -c is what conf/ferry.toml describes, value for value.
    builtin = run("--check-config")
    from_file = run("-c", DEFAULT_CONF, "--check-config")
    assert builtin.returncode == 0 and from_file.returncode == 0
    b = builtin.stdout.decode()
    assert b.startswith("config <built-in conf/ferry.toml> is valid\n")
    assert b.replace("<built-in conf/ferry.toml>", DEFAULT_CONF) == from_file.stdout.decode()


def test_no_config_serves_on_the_default_port(tmp_path):
    # The built-in config listens on 127.0.0.1:24224 and prints events to stdout.
    from fluent import sender
    with open(tmp_path / "err.log", "wb") as err, open(tmp_path / "out.log", "wb") as out:
        p = subprocess.Popen([FERRYD], stderr=err, stdout=out, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, TZ="UTC"))
    try:
        wait_for(lambda: "ferryd started" in (tmp_path / "err.log").read_text()
                 or p.poll() is not None, "start")
        if p.poll() is not None:
            err_text = (tmp_path / "err.log").read_text()
            if "already in use" in err_text:
                pytest.skip("port 24224 is busy on this host")
            pytest.fail(err_text)
        assert "listening on 127.0.0.1:24224" in (tmp_path / "err.log").read_text()
        s = sender.FluentSender("app", host="127.0.0.1", port=24224)
        assert s.emit_with_time("cli", 1700000000, {"k": "v"})
        s.close()
        want = '2023-11-14 22:13:20.000000000 +0000 app.cli: {"k":"v"}\n'
        wait_for(lambda: (tmp_path / "out.log").read_text() == want, "the stdout line")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=DEADLINE) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_option_reference_describes_every_option():
    r = run("--print-option-reference")
    assert r.returncode == 0
    out = r.stdout.decode()
    for heading in ("## [ferry] (alias [hekad])", "## ForwardInput (input)",
                    "## StdoutOutput (output)", "## FileOutput (output)", "## NullOutput (output)"):
        assert heading in out
    assert "| `max_frame_size` | size | `64MiB` | 1KiB – 2GiB | yes |" in out
    assert "| `max_tag_length` | integer | `1024` | 1 – 65535 | yes |" in out
    assert "| `idle_timeout` | duration | `10m` | 0 – 24h | yes |" in out
    assert "| `shutdown_timeout` | duration | `10s` | 0 – 1h | yes |" in out
    assert "| `path` | string | required |" in out


@pytest.mark.skipif(not os.path.exists(OPTION_DOC), reason="docs/configuration.md not written yet")
def test_option_reference_matches_docs():
    r = run("--print-option-reference")
    assert r.returncode == 0
    with open(OPTION_DOC, "rb") as f:
        assert r.stdout == f.read(), "regenerate docs/configuration.md with " \
                                     "`ferryd --print-option-reference`"


@pytest.mark.parametrize("plugin,net,family,why", [
    ("TcpInput", "unix", "tcp", "ferry's TcpInput does not listen on unix sockets"),
    ("UdpInput", "tcp", "udp", "ferry's UdpInput does not read unix datagram sockets"),
])
def test_heka_input_net_must_match_its_family(tmp_path, plugin, net, family, why):
    path = write(tmp_path, f'[in]\ntype = "{plugin}"\naddress = "127.0.0.1:5565"\nnet = "{net}"\n'
                           'splitter = "HekaFramingSplitter"\ndecoder = "ProtobufDecoder"\n'
                           + GOOD_OUT)
    r = run("-c", path, "--check-config")
    assert r.returncode == 1
    assert (f"{path}:4: key 'in.net': expected \"{family}\", \"{family}4\" or \"{family}6\", "
            f"got \"{net}\" ({why})") in r.stderr.decode()
