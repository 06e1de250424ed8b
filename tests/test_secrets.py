"""No secret on disk or in a message: base URLs with credentials or a query, and keys an endpoint reflects.

The endpoint is a real HTTP server on loopback that echoes what it receives (the request
path, the Authorization header, and the key in the transforms a server may reflect it in:
percent-encoded, base64 of the key and of ``user:key``, hex) into its answers, so every
path by which endpoint text is kept (outputs, result files, records, messages, the cache)
is checked against a server that tries to leak.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from attrib.backends.openai import OpenAIBackend
from attrib.backends.openai.redaction import Secrets
from attrib.cli import main
from attrib.errors import InputError, RequestRejectedError
from attrib.testing.loopback import Loopback, Reply, Request
from attrib.urls import BaseURL, safe_url

KEY = "sk-header+secret/0123456789=="
QUERY_KEY = "qk-9f8e7d6c5b4a"
USER_PASSWORD = "hunter2-password"


def transforms(secret: str) -> list[str]:
    """The forms a reflecting server may give ``secret`` back in."""
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        base64.b64encode(raw).decode(),
        base64.b64encode(b"user:" + raw).decode(),
        base64.b64encode(b"Bearer " + raw).decode(),
        base64.urlsafe_b64encode(b"u:" + raw).decode(),
        raw.hex(),
    ]


def leaked(text: str) -> list[str]:
    """Every form of every secret that occurs in ``text``."""
    return [form for secret in (KEY, QUERY_KEY, USER_PASSWORD) for form in transforms(secret) if form in text]


class Echo(Loopback):
    """A loopback HTTP server answering every request with what it received, in many encodings.

    ``status=200``: chat completions whose message is the echo; otherwise that status with
    the echo as an OpenAI-style error message, after ``pad`` dots. ``paths`` lists each request's path.
    """

    def __init__(self, status: int = 200, pad: int = 0) -> None:
        self.status, self.pad = status, pad
        super().__init__(self._reply)

    def _reply(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        token = auth.split(" ", 1)[-1]
        said = "." * self.pad + " ".join(
            [
                f"you sent {request.path} with {auth}",
                base64.b64encode(auth.encode()).decode(),
                base64.b64encode(f"user:{token}".encode()).decode(),
                quote(token, safe=""),
                quote(request.path, safe=""),
                token.encode().hex(),
            ]
        )
        if self.status == 200:
            return Reply(200, {"choices": [{"message": {"role": "assistant", "content": said}}], "usage": {}})
        return Reply(self.status, {"error": {"message": said, "type": "invalid_request_error"}})

    @property
    def paths(self) -> list[str]:
        """Each request's path (query included), in arrival order."""
        return [r.path for r in self.requests]


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as server:
        yield server


def everything_under(*directories: Path) -> str:
    return "".join(
        path.read_bytes().decode("utf-8", "replace") for d in directories for path in d.rglob("*") if path.is_file()
    )


def batch(tmp_path: Path, base_url: str, *extra: str) -> tuple[int, Path]:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"q{n}", "prompt": "Paris is nice"}) + "\n" for n in range(2)))
    out = tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--backend", "openai", "--base-url", base_url, "--model", "m"]
    options = ["--scoring", "text", "--tokenizer", "words", "--level", "word", "--max-retries", "0"]
    return main([*argv, *options, "--max-new-tokens", "4", *extra]), out


# ---------------------------------------------------------------------------- the one sanitiser


def test_a_base_url_is_split_into_what_is_sent_and_what_is_shown() -> None:
    url = BaseURL.parse(f"HTTPS://Api.Example.com:8443/openai/v1/?api-version=2024-06-01&key={QUERY_KEY}#frag")
    assert url.root == "https://api.example.com:8443/openai/v1"
    assert url.query == (("api-version", "2024-06-01"), ("key", QUERY_KEY))
    assert url.shown == str(url) == "https://api.example.com:8443/openai/v1?[redacted]"
    assert QUERY_KEY not in repr(url) and QUERY_KEY in url.secrets
    assert BaseURL.parse("http://[::1]:8080/v1").root == "http://[::1]:8080/v1"
    assert BaseURL.parse(f"http://h/v1?{QUERY_KEY}").secrets == (QUERY_KEY,)  # a bare token is a secret too
    for bad in ("127.0.0.1:8080/v1", "ftp://h/v1", "http:///v1", "http://h:port/v1"):
        with pytest.raises(InputError):
            BaseURL.parse(bad)


def test_user_info_in_a_base_url_is_refused_with_where_the_key_goes(echo: Echo) -> None:
    with pytest.raises(InputError) as caught:
        OpenAIBackend("m", base_url=f"http://user:{USER_PASSWORD}@127.0.0.1:9/v1", cache=False)
    message = str(caught.value)
    assert "user name or password" in message and "OPENAI_API_KEY" in message and "--api-key-env" in message
    assert USER_PASSWORD not in message and "user:" not in message and "\n" not in message
    assert safe_url(f"http://user:{USER_PASSWORD}@h:1/v1?k={QUERY_KEY}#x") == "http://h:1/v1?[redacted]"


def test_a_user_info_url_on_the_command_line_is_one_line_and_sends_nothing(
    tmp_path: Path, echo: Echo, capsys: pytest.CaptureFixture[str]
) -> None:
    host = echo.root.removeprefix("http://")
    status = main(
        ["explain", "Paris is nice", "--backend", "openai", "--base-url", f"http://u:{USER_PASSWORD}@{host}/v1"]
    )
    err = capsys.readouterr().err
    assert status != 0 and err.startswith("attrib: error: ") and err.count("\n") == 1, err
    assert "--api-key-env" in err and not leaked(err)
    assert echo.paths == []


def test_a_batch_with_user_info_keeps_no_password_on_disk(
    tmp_path: Path, echo: Echo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    host = echo.root.removeprefix("http://")
    status, out = batch(tmp_path, f"http://user:{USER_PASSWORD}@{host}/v1?key={QUERY_KEY}")
    err = capsys.readouterr().err
    assert status != 0 and "user name or password" in err and not leaked(err)
    assert echo.paths == []  # never sent as Basic authentication
    assert not leaked(everything_under(tmp_path, Path(os.environ["ATTRIB_CACHE_DIR"])))


def test_a_query_is_sent_after_the_path_on_every_request_and_stored_nowhere(
    tmp_path: Path, echo: Echo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    status, out = batch(tmp_path, f"{echo.root}/v1/?api-version=2024-06-01&key={QUERY_KEY}")
    err = capsys.readouterr().err
    assert status == 0, err
    assert echo.paths and all(
        path == f"/v1/chat/completions?api-version=2024-06-01&key={QUERY_KEY}" for path in echo.paths
    ), echo.paths
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["backend_options"]["base_url"] == f"{echo.root}/v1?[redacted]"
    kept = everything_under(out, Path(os.environ["ATTRIB_CACHE_DIR"]))
    assert "you sent" in kept  # the reflected answers were kept (outputs of the results) ...
    assert not leaked(kept + err), leaked(kept + err)  # ... without the key in any form
    result = json.loads(next((out / "items").glob("*.json")).read_text())
    assert result["backend"]["endpoint"] == f"{echo.root}/v1?[redacted]"


def test_a_refusal_that_echoes_the_key_becomes_a_record_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with Echo(status=400) as refusing:
        status, out = batch(tmp_path, f"{refusing.root}/v1?key={QUERY_KEY}")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert status == 1 and len(lines) == 2 and all(r["status"] != "ok" for r in lines)
    assert all("you sent /v1/chat/completions" in str(r["error"]) for r in lines), lines
    assert not leaked(everything_under(out) + err), leaked(everything_under(out) + err)


def test_the_cache_and_the_identity_hold_no_secret(tmp_path: Path, echo: Echo) -> None:
    api = OpenAIBackend(
        "m", base_url=f"{echo.root}/v1?key={QUERY_KEY}", api_key=KEY, scoring="text", tokenizer="words", cache=tmp_path
    )
    try:
        generation = api.generate(api.tokenize("Paris is nice").ids, max_new_tokens=4)
        said = api.detokenize(generation.ids)
        assert "[redacted]" in said and not leaked(said)
        assert not leaked(json.dumps(api.identity()) + json.dumps(api.describe()))
    finally:
        api.close()
    from attrib.cache.wrapper import CachingBackend, open_cache

    store = open_cache(tmp_path / "answers")
    assert store is not None
    cached = CachingBackend(
        OpenAIBackend("m", base_url=f"{echo.root}/v1?key={QUERY_KEY}", api_key=KEY, scoring="text", tokenizer="words"),
        store,
    )
    try:
        cached.generate(cached.tokenize("Paris is nice").ids, max_new_tokens=4)
    finally:
        cached.close()
    assert not leaked(everything_under(tmp_path))


# ---------------------------------------------------------------------------- reflected keys


@pytest.mark.parametrize("secret", [KEY, QUERY_KEY, "ключ-sécret-ünïcode-42", "a b+c/d=e&f%g"])
def test_a_secret_is_removed_in_every_form_a_server_reflects_it_in(secret: str) -> None:
    secrets = Secrets([secret, "short"])
    for form in transforms(secret) + [quote(secret, safe="").lower(), json.dumps(secret)[1:-1]]:
        for text in (form, f"error: {form}.", f'{{"x": "Basic {form}"}}'):
            scrubbed = secrets.scrub(text)
            assert form not in scrubbed and "[redacted]" in scrubbed, (form, scrubbed)
    assert secrets.scrub("short words stay") == "short words stay"  # shorter than MIN_SECRET: no secret
    assert secrets.scrub("Paris is the capital of France.") == "Paris is the capital of France."


def test_the_http_clients_own_log_lines_lose_the_query_values(echo: Echo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = OpenAIBackend(
        "m", base_url=f"{echo.root}/v1?a=1&a=2&key={QUERY_KEY}", api_key=KEY, scoring="text", tokenizer="words"
    )
    try:
        api.generate(api.tokenize("Paris is nice").ids, max_new_tokens=4)
    finally:
        api.close()
    assert echo.paths == [f"/v1/chat/completions?a=1&a=2&key={QUERY_KEY}"]  # a repeated name stays repeated
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/v1/chat/completions" in logged and not leaked(logged), leaked(logged)


@pytest.mark.parametrize("pad", [240, 244, 247])
def test_a_key_cut_by_the_one_line_limit_leaves_no_part_of_it(pad: int) -> None:
    # The message keeps 300 characters of the server's text: a key across that edge must not leave its start.
    with Echo(status=400, pad=pad) as refusing:
        api = OpenAIBackend("m", base_url=f"{refusing.root}/v1", api_key=KEY, scoring="text", tokenizer="words")
        with pytest.raises(RequestRejectedError) as caught:
            api.generate(api.tokenize("Paris").ids, max_new_tokens=2)
        api.close()
    message = str(caught.value)
    pieces = [KEY[i : i + 4] for i in range(len(KEY) - 3)]
    assert "you sent" in message and not [p for p in pieces if p in message], message
