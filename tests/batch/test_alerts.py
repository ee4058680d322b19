"""Notifiers after a run, against real servers on 127.0.0.1: a webhook (http.server), SMTP (aiosmtpd), a
JSON-lines event file; a hanging webhook is cut off by its timeout and never fails the batch; secrets stay out
of the output."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from batchkit import run_cli


def _tree(root: Path, triage: Path) -> None:
    for name in ("PC1/Minidump/a.dmp", "PC2/Minidump/b.dmp"):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(triage, p)


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, json.loads(body)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_and_events(tmp_path: Path, triage_x64_path: Path, webhook: ThreadingHTTPServer) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _tree(src, triage_x64_path)
    port = webhook.server_address[1]
    url = f"http://127.0.0.1:{port}/hook?token=SECRET-TOKEN-123"
    events = tmp_path / "events.jsonl"
    res = run_cli("batch", src, "--out", out, "--no-convert", "--notify-webhook", url, "--events", events)
    assert res.returncode == 0, res.stderr
    [(path, doc)] = webhook.received  # type: ignore[attr-defined]
    assert path == "/hook?token=SECRET-TOKEN-123"
    assert doc["type"] == "dbgauto.run_summary"
    assert doc["succeeded"] == 2
    assert [b["bucket"] for b in doc["changes"]["new_buckets"]] == ["SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm"]
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert sorted((e["event"], e.get("host")) for e in lines if e["event"] == "result") == [
        ("result", "PC1"),
        ("result", "PC2"),
    ]
    assert [e["event"] for e in lines if e["event"] != "result"] == ["new_bucket"]
    assert "SECRET-TOKEN-123" not in res.stdout + res.stderr
    options = json.loads((out / "run_summary.json").read_text())
    assert options["run_id"] == doc["run_id"]


def test_failing_and_hanging_notifiers_do_not_fail_the_batch(tmp_path: Path, triage_x64_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _tree(src, triage_x64_path)
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(5)  # accepts connections (kernel backlog) and never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens here: connection refused
    try:
        url = f"http://user:PASSWORD-XYZ@127.0.0.1:{hang.getsockname()[1]}/h?key=SECRET-KEY"
        res = run_cli(
            "batch",
            src,
            "--out",
            out,
            "--no-convert",
            "--notify-webhook",
            url,
            "--notify-smtp",
            f"127.0.0.1:{dead_port}",
            "--notify-to",
            "ops@example.org",
            "--notify-timeout",
            "1",
            env={"DBGAUTO_SMTP_PASSWORD": "SMTP-PASS-999"},
        )
    finally:
        hang.close()
    assert res.returncode == 0, res.stderr
    text = res.stdout + res.stderr
    assert "notifier webhook http://127.0.0.1:" in text
    assert "timed out" in text or "no answer" in text
    assert "notifier smtp 127.0.0.1" in text
    for secret in ("PASSWORD-XYZ", "SECRET-KEY", "SMTP-PASS-999"):
        assert secret not in text


def test_smtp_mail(tmp_path: Path, triage_x64_path: Path) -> None:
    got: list[bytes] = []

    class Keep(Message):
        def handle_message(self, message: Any) -> None:
            got.append(message.as_bytes())

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        src, out = tmp_path / "src", tmp_path / "out"
        _tree(src, triage_x64_path)
        res = run_cli(
            "batch",
            src,
            "--out",
            out,
            "--no-convert",
            "--notify-smtp",
            f"127.0.0.1:{port}",
            "--notify-to",
            "ops@example.org",
            "--notify-from",
            "dbgauto@example.org",
        )
    finally:
        controller.stop()
    assert res.returncode == 0, res.stderr
    [raw] = got
    msg = message_from_bytes(raw)
    assert msg["To"] == "ops@example.org"
    assert "2 ok, 0 failed, 1 new bucket(s)" in msg["Subject"]
    assert (
        "new bucket   SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm  (2 dump(s), 2 host(s))"
        in msg.get_payload(decode=True).decode()
    )
