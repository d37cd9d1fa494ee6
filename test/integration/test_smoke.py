# The smallest end-to-end path: python3-fluent-logger → ferryd → FileOutput.
from fluent import sender


def test_pylogger_event_reaches_file(ferryd):
    s = sender.FluentSender("app", host="127.0.0.1", port=ferryd.port, nanosecond_precision=True)
    assert s.emit_with_time("smoke", 1700000000.5, {"k": "v"})
    s.close()
    lines = ferryd.wait_lines(1)
    assert lines == [{"tag": "app.smoke", "time": "2023-11-14T22:13:20.500000000Z",
                      "record": {"k": "v"}}]
    assert ferryd.stop() == 0
