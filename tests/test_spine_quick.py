def test_echo_roundtrip(kernel):
    pid = kernel.spawn("EchoAgent", "hello")
    snap = kernel.wait(pid, timeout=30)
    assert snap["state"] == "done" and snap["result"] == "hello"
