"""The loopback JSON server behind the test doubles: what it records, what it sends, how it drops."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import pytest

from attrib.testing.loopback import DROP, Loopback, Reply, Request


def post(url: str, data: bytes, **headers: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_a_request_is_recorded_parsed_and_answered_by_the_function() -> None:
    def answer(request: Request) -> Reply:
        got = request.body if isinstance(request.body, dict) else repr(request.body)
        return Reply(201, {"got": got, "route": request.route})

    with Loopback(answer) as server:
        status, kind, body = post(server.url + "/completions?k=1", b'{"a": [1, 2]}', Authorization="Bearer t")
        post(server.root + "/raw", b"not json")
    assert (status, kind) == (201, "application/json")
    assert json.loads(body) == {"got": {"a": [1, 2]}, "route": "/v1/completions"}
    first, second = server.requests
    assert (first.method, first.path, first.headers["authorization"]) == ("POST", "/v1/completions?k=1", "Bearer t")
    assert second.body == b"not json"  # kept raw, not refused


def test_bytes_go_out_as_given_and_drop_closes_unanswered() -> None:
    def answer(request: Request) -> Reply | None:
        return (
            DROP if request.route == "/drop" else Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
        )

    with Loopback(answer) as server:
        with pytest.raises(urllib.error.HTTPError) as failed:
            post(server.root + "/page", b"{}")
        assert failed.value.code == 502 and failed.value.headers["Content-Type"] == "text/html"
        assert failed.value.read() == b"<html>bad gateway</html>"
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
            post(server.root + "/drop", b"{}")
    assert [r.route for r in server.requests] == ["/page", "/drop"]
