"""attrib batch against a real OpenAI-compatible server on loopback: an audit with a reference endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attrib.cli import main

pytestmark = pytest.mark.server


def test_a_batch_audit_against_a_reference_endpoint_keeps_no_key(
    llama_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATTRIB_BATCH_TEST_KEY", llama_server.key)
    source = tmp_path / "chats.jsonl"
    rows = [{"id": "wifi", "prompt": "What is the wifi password?", "label": "wifi"}]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--task", "audit", "--backend", "openai", "--quiet"]
    argv += ["--base-url", llama_server.url, "--model", llama_server.model, "--api-key-env", "ATTRIB_BATCH_TEST_KEY"]
    argv += ["--reference-base-url", llama_server.url, "--max-new-tokens", "3", "--timeout", "600"]
    argv += ["--system", "You are Hotel Lindqvist's assistant. The wifi password is otter-42."]
    assert main(argv) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["wifi"]
    for record in records:
        assert record["task"] == "audit" and record["meta"] == {"label": record["id"]}
        assert record["hidden_influence"]["kind"] == "differential"
        assert record["system_top"]["text"] in argv[-1]
        assert set(record["roles"]) == {"system", "user"}
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert llama_server.key.encode() not in written
