"""`kill -USR1`: a running gateway writes its asyncio tasks and open connections to its
log, and goes on serving."""

from __future__ import annotations

import http.client
import json
import signal

from support.gateway import Gateway, wait_until

from forebay.diagnostics import BEGIN, END


def test_sigusr1_writes_the_tasks_and_the_open_connections(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    g: Gateway = gateway_factory()
    assert g.proc is not None
    kept = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
    kept.request("GET", "/echo/kept")
    assert kept.getresponse().read()  # answered, and the connection stays open

    g.proc.send_signal(signal.SIGUSR1)
    log = wait_until(lambda: END in (text := g.output()) and text, what="the task dump")
    dump = log[log.index(BEGIN) : log.index(END)]
    assert "data plane: 1 connection(s) open, 0 request task(s), exiting: False" in dump
    assert "admin: 0 connection(s) open" in dump
    tasks = int(dump.split(" task(s)\n", 1)[0].rsplit("\n", 1)[1])
    assert tasks >= 1
    assert dump.count("Stack for <Task ") == tasks  # each with what it awaits
    assert "name='dispatch-claim'" in dump

    kept.request("GET", "/echo/again")  # the same connection, still served
    resp = kept.getresponse()
    assert resp.status == 200 and resp.read()
    kept.close()
    assert g.stop() == 0
    stopping = [
        json.loads(line)
        for line in g.output().splitlines()
        if line.startswith("{") and '"event": "stopping"' in line
    ]
    assert [(s["connections"], s["admin_connections"]) for s in stopping] == [(0, 0)]
