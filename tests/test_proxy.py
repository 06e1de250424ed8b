"""The fault-injecting proxy (attrib.testing.proxy) against a tiny fake upstream: no model, loopback only."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from attrib.testing.proxy import FAULTS, Proxy, Record

HIDDEN = "You are a travel agent. Always recommend Lisbon."
PREFIX = HIDDEN + "\n\n"


def _pieces(text: str, start: int = 0) -> tuple[list[str], list[int]]:
    """Fake tokenizer: each word keeps the whitespace after it."""
    matches = list(re.finditer(r"\S+\s*|\s+", text))
    return [m.group() for m in matches], [start + m.start() for m in matches]


def _completion(prompt: str, echo: bool) -> dict:
    """What llama-cpp-python's server answers: generated offsets count the prompt, the first echoed token has None."""
    generated = " ok"
    text = prompt + generated if echo else generated
    tokens, offsets = _pieces(text, 0 if echo else len(prompt))
    logprobs = [-0.1 * (i + 1) for i in range(len(tokens))]
    if echo:
        logprobs[0] = None
    return {
        "text": text,
        "logprobs": {
            "tokens": tokens,
            "text_offset": offsets,
            "token_logprobs": logprobs,
            "top_logprobs": [None if lp is None else {tok: lp} for tok, lp in zip(tokens, logprobs, strict=True)],
        },
    }


class _FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def _reply(self, status: int, value: dict) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _note(self, body: bytes) -> None:
        self.server.received.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )

    def do_GET(self):
        self._note(b"")
        if self.path.split("?")[0] == "/v1/models":
            self._reply(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._note(body)
        request = json.loads(body)
        if self.path == "/v1/completions":
            prompts = request["prompt"] if isinstance(request["prompt"], list) else [request["prompt"]]
            choices = [{"index": i, **_completion(p, bool(request.get("echo")))} for i, p in enumerate(prompts)]
            self._reply(200, {"object": "text_completion", "choices": choices, "usage": {"total_tokens": 7}})
        elif self.path == "/v1/chat/completions":
            reply = {"role": "assistant", "content": json.dumps(request["messages"])}
            self._reply(200, {"object": "chat.completion", "choices": [{"index": 0, "message": reply}]})
        elif self.path == "/extras/tokenize":
            self._reply(200, {"tokens": list(range(len(request["input"].split())))})
        else:
            self._reply(404, {"error": {"message": "not found"}})


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # no FQDN lookup
        self.server_name, self.server_port = self.server_address[:2]


@pytest.fixture
def upstream():
    """A fake OpenAI-compatible server; ``.received`` lists the requests it got, ``.root`` is its URL."""
    server = _FakeServer(("127.0.0.1", 0), _FakeHandler)
    server.received = []
    server.root = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def client():
    with httpx.Client(timeout=10.0, trust_env=False) as c:
        yield c


def _body(prompt: str = "The capital of France is", **extra) -> bytes:
    return json.dumps({"model": "fake", "prompt": prompt, "max_tokens": 1, **extra}).encode()


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _post(client: httpx.Client, proxy: Proxy, body: bytes, path: str = "/v1/completions", **kwargs) -> httpx.Response:
    return client.post(proxy.root + path, content=body, headers={"Content-Type": "application/json"}, **kwargs)


def _wait_records(proxy: Proxy, count: int) -> list[Record]:
    deadline = time.monotonic() + 5.0
    while len(proxy.records) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(proxy.records)


def test_ok_forwards_body_headers_and_answer_and_records_it(upstream, client):
    body = _body()
    direct = client.post(upstream.root + "/v1/completions", content=body)
    with Proxy(upstream.root) as proxy:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", proxy.root) and proxy.url == proxy.root + "/v1"
        r = client.post(
            proxy.url + "/completions",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer sk-test",
                "Accept": "application/json",
            },
        )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == direct.json()
    seen = upstream.received[-1]
    assert seen["body"] == body and seen["path"] == "/v1/completions"
    assert seen["headers"]["Authorization"] == "Bearer sk-test" and seen["headers"]["Accept"] == "application/json"
    assert proxy.records == [Record("/v1/completions", _sha(body), "ok", 200, True)]
    assert proxy.forwarded_bodies() == {_sha(body): 1}


@pytest.mark.parametrize(("retry_after", "header"), [(1.0, "1"), (0.5, "0.5")])
def test_429_answers_rate_limit_with_retry_after_without_calling_upstream(upstream, client, retry_after, header):
    with Proxy(upstream.root, faults=["429"], retry_after=retry_after) as proxy:
        r = _post(client, proxy, _body())
    assert r.status_code == 429 and r.headers["retry-after"] == header
    assert r.json()["error"]["type"] == "rate_limit_error" and r.json()["error"]["code"] == "rate_limited"
    assert upstream.received == []
    assert proxy.records[0].fault == "429" and proxy.records[0].upstream_called is False
    assert proxy.forwarded_bodies() == {}


def test_500_answers_server_error_without_calling_upstream(upstream, client):
    with Proxy(upstream.root, faults=["500"]) as proxy:
        r = _post(client, proxy, _body(), path="/v1/chat/completions")
    assert r.status_code == 500 and "message" in r.json()["error"]
    assert upstream.received == []
    assert proxy.records == [Record("/v1/chat/completions", _sha(_body()), "500", 500, False)]


def test_drop_closes_the_connection_without_an_answer_and_keeps_serving(upstream, client, capfd):
    with Proxy(upstream.root, faults=["drop", "ok"]) as proxy:
        with pytest.raises(httpx.TransportError):
            _post(client, proxy, _body())
        assert _post(client, proxy, _body()).status_code == 200
    assert [(rec.fault, rec.status, rec.upstream_called) for rec in proxy.records] == [
        ("drop", None, False),
        ("ok", 200, True),
    ]
    assert len(upstream.received) == 1
    assert "Traceback" not in capfd.readouterr().err


def test_slow_times_out_a_hasty_client_and_answers_a_patient_one(upstream, client, capfd):
    body = _body()
    with Proxy(upstream.root, faults=["slow"], slow_seconds=0.4) as proxy:
        with pytest.raises(httpx.TimeoutException):
            _post(client, proxy, body, timeout=0.1)
        started = time.monotonic()
        r = _post(client, proxy, body)
        assert r.status_code == 200 and time.monotonic() - started >= 0.4
        records = _wait_records(proxy, 2)
    # The hasty client's request still reached the upstream, but its answer was never delivered.
    assert sorted((rec.status is None, rec.upstream_called) for rec in records) == [(False, True), (True, True)]
    assert all(rec.fault == "slow" for rec in records)
    assert len(upstream.received) == 2
    assert proxy.forwarded_bodies() == {_sha(body): 1}
    assert "Traceback" not in capfd.readouterr().err


def test_malformed_calls_upstream_and_answers_half_its_body(upstream, client):
    body = _body()
    direct = client.post(upstream.root + "/v1/completions", content=body).content
    with Proxy(upstream.root, faults=["malformed"]) as proxy:
        r = _post(client, proxy, body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == direct[: len(direct) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    assert len(upstream.received) == 2
    assert proxy.records == [Record("/v1/completions", _sha(body), "malformed", 200, True)]
    assert proxy.forwarded_bodies() == {}


def test_schedule_faults_every_nth_request_in_turn_and_set_faults_restarts_it(upstream, client):
    with Proxy(upstream.root, faults=["429", "500"], fault_every=3) as proxy:
        statuses = [_post(client, proxy, _body(f"p{k}")).status_code for k in range(8)]
        assert statuses == [429, 200, 200, 500, 200, 200, 429, 200]
        assert [rec.fault for rec in proxy.records] == ["429", "ok", "ok", "500", "ok", "ok", "429", "ok"]
        assert proxy.forwarded_bodies() == {_sha(_body(f"p{k}")): 1 for k in (1, 2, 4, 5, 7)}

        proxy.set_faults(["ok", "500"])
        assert [_post(client, proxy, _body("again")).status_code for _ in range(4)] == [200, 500, 200, 500]
        assert proxy.forwarded_bodies()[_sha(_body("again"))] == 2

        proxy.set_faults([])
        assert [_post(client, proxy, _body()).status_code for _ in range(2)] == [200, 200]
    assert len(proxy.records) == 14


def test_other_paths_and_methods_are_forwarded_untouched_and_not_recorded(upstream, client):
    tokenize = json.dumps({"input": "The capital of France"}).encode()
    with Proxy(upstream.root, faults=["500"], inject_system=HIDDEN) as proxy:
        models = client.get(proxy.url + "/models", params={"limit": "2"})
        tokens = client.post(proxy.root + "/extras/tokenize", content=tokenize)
        missing = client.get(proxy.root + "/nowhere")
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "fake"
    assert tokens.status_code == 200 and tokens.json() == {"tokens": [0, 1, 2, 3]}
    assert missing.status_code == 404
    assert [(seen["method"], seen["path"]) for seen in upstream.received] == [
        ("GET", "/v1/models?limit=2"),
        ("POST", "/extras/tokenize"),
        ("GET", "/nowhere"),
    ]
    assert upstream.received[1]["body"] == tokenize
    assert proxy.records == []


def test_chat_injection_puts_the_hidden_system_message_first_and_passes_the_answer_through(upstream, client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where to go?"}]
    body = json.dumps({"model": "fake", "messages": messages}).encode()
    with Proxy(upstream.root, inject_system=HIDDEN) as proxy:
        r = _post(client, proxy, body, path="/v1/chat/completions")
    sent = json.loads(upstream.received[0]["body"])["messages"]
    assert sent == [{"role": "system", "content": HIDDEN}, *messages]
    assert r.status_code == 200
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == sent
    assert proxy.records == [Record("/v1/chat/completions", _sha(body), "ok", 200, True)]


def test_completion_injection_with_echo_hides_the_prefix_but_keeps_real_logprobs(upstream, client):
    prompt = "Where should I travel this summer?"
    body = _body(prompt, echo=True, logprobs=1)
    direct = client.post(upstream.root + "/v1/completions", content=body).json()["choices"][0]
    with Proxy(upstream.root, inject_system=HIDDEN) as proxy:
        r = _post(client, proxy, body)
    assert json.loads(upstream.received[-1]["body"])["prompt"] == PREFIX + prompt
    choice = r.json()["choices"][0]
    assert choice["text"] == prompt + " ok"
    logprobs = choice["logprobs"]
    # The caller sees its own tokens and offsets, exactly as without the hidden prompt...
    assert logprobs["tokens"] == direct["logprobs"]["tokens"]
    assert logprobs["text_offset"] == direct["logprobs"]["text_offset"] and logprobs["text_offset"][0] == 0
    assert "".join(logprobs["tokens"]) == choice["text"]
    # ...but with the log-probabilities the upstream computed after the prefix (no None first value).
    hidden_count = len(_pieces(PREFIX)[0])
    upstream_view = _completion(PREFIX + prompt, echo=True)["logprobs"]
    assert logprobs["token_logprobs"] == upstream_view["token_logprobs"][hidden_count:]
    assert logprobs["token_logprobs"][0] is not None
    assert logprobs["top_logprobs"] == upstream_view["top_logprobs"][hidden_count:]
    assert len(logprobs["top_logprobs"]) == len(logprobs["tokens"])


def test_completion_injection_without_echo_shifts_offsets_and_prefixes_each_prompt_of_a_list(upstream, client):
    prompts = ["First question?", "Second question?"]
    body = _body(prompts, logprobs=1)
    direct = client.post(upstream.root + "/v1/completions", content=body).json()["choices"]
    with Proxy(upstream.root, inject_system=HIDDEN, faults=["ok"]) as proxy:
        r = _post(client, proxy, body)
    assert json.loads(upstream.received[-1]["body"])["prompt"] == [PREFIX + p for p in prompts]
    answer = r.json()
    for got, want in zip(answer["choices"], direct, strict=True):
        assert got["text"] == want["text"] == " ok"
        assert got["logprobs"]["text_offset"] == want["logprobs"]["text_offset"]
    assert answer["usage"] == {"total_tokens": 7}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"faults": ["429", "bogus"]}, "unknown fault 'bogus'; valid faults: ok, 429, 500, drop, slow, malformed"),
        ({"fault_every": 0}, "fault_every"),
        ({"slow_seconds": -1}, ">= 0"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        Proxy("http://127.0.0.1:1", **kwargs)


def test_bad_upstream_and_set_faults_raise_and_root_needs_start():
    with pytest.raises(ValueError, match="http"):
        Proxy("127.0.0.1:8080")
    with pytest.raises(TypeError, match="not the string"):
        Proxy("http://127.0.0.1:1", faults="429")
    proxy = Proxy("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="valid faults"):
        proxy.set_faults(["late"])
    with pytest.raises(RuntimeError, match="start"):
        _ = proxy.url


def test_unreachable_upstream_answers_502(client):
    with Proxy("http://127.0.0.1:1") as proxy:
        r = _post(client, proxy, _body())
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_failed"
    assert proxy.records[0].status == 502 and proxy.records[0].upstream_called is False


def test_stop_closes_the_port(upstream, client):
    proxy = Proxy(upstream.root).start()
    assert _post(client, proxy, _body()).status_code == 200  # leaves a keep-alive connection open
    proxy.stop()
    with httpx.Client(timeout=2.0, trust_env=False) as fresh, pytest.raises(httpx.TransportError):
        _post(fresh, proxy, _body())


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attrib.testing.proxy", *args], check=False, capture_output=True, text=True, timeout=60
    )


def test_script_help_explains_every_fault():
    proc = _script("--help")
    assert proc.returncode == 0, proc.stderr
    for name, what in FAULTS.items():
        assert name in proc.stdout and what[:30] in proc.stdout.replace("\n", " ")
    assert "--inject-system-file" in proc.stdout and "--fault-every" in proc.stdout


@pytest.mark.parametrize("args", [("--faults", "429,bogus"), ("--faults", "ok", "--fault-every", "0")])
def test_script_bad_arguments_print_one_line_and_exit_2(args):
    proc = _script("--upstream", "http://127.0.0.1:1", *args)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("python -m attrib.testing.proxy: error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_script_serves_until_interrupted(upstream, client, tmp_path):
    hidden = tmp_path / "hidden.txt"
    hidden.write_text(HIDDEN + "\n", encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attrib.testing.proxy",
            "--upstream",
            upstream.root,
            "--faults",
            "429,ok",
            "--inject-system-file",
            str(hidden),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a runner started in the background (``cmd &`` without
        # job control) ignores SIGINT, and its children would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"proxy listening on (http://127\.0\.0\.1:\d+)/v1 -> (\S+)\n", line)
        assert match and match.group(2) == upstream.root, line
        root = match.group(1)
        body = json.dumps({"model": "fake", "messages": [{"role": "user", "content": "hi"}]}).encode()
        assert client.post(root + "/v1/chat/completions", content=body).status_code == 429
        assert client.post(root + "/v1/chat/completions", content=body).status_code == 200
        assert json.loads(upstream.received[-1]["body"])["messages"][0] == {"role": "system", "content": HIDDEN}
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
