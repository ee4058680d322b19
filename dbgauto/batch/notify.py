"""Tell someone what a run changed: a webhook (JSON POST), an e-mail (SMTP), a JSON-lines event stream.

Why each notifier runs on its own daemon thread with a deadline: a notifier is an outside service; a slow,
failing or hanging one must never fail or hold up the batch. Each gets ``timeout`` seconds for its socket
operations and the same again to finish; a problem becomes one warning line and the batch goes on.
Secrets stay out of every message: webhook URLs are shown as scheme://host:port only, the SMTP password is
read from ``$DBGAUTO_SMTP_PASSWORD`` and never printed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import smtplib
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["PASSWORD_ENV", "WEBHOOK_ENV", "NotifyOptions", "events_of", "notify", "redact_url"]

log = logging.getLogger("dbgauto.batch")

PASSWORD_ENV = "DBGAUTO_SMTP_PASSWORD"
WEBHOOK_ENV = "DBGAUTO_WEBHOOK_URL"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(slots=True)
class NotifyOptions:
    webhook: str | None = None  # URL (or $DBGAUTO_WEBHOOK_URL); may carry a token: never logged whole
    smtp: str | None = None  # HOST[:PORT]
    mail_to: tuple[str, ...] = ()
    mail_from: str = "dbgauto@localhost"
    smtp_user: str | None = None  # the password comes from $DBGAUTO_SMTP_PASSWORD
    starttls: bool = False
    events: str | None = None  # JSON-lines file, appended to
    timeout: float = 10.0
    only_changes: bool = False  # webhook/e-mail only when something changed

    @property
    def any(self) -> bool:
        return bool(self.webhook or os.environ.get(WEBHOOK_ENV) or self.smtp or self.events)


def redact_url(url: str) -> str:
    """``scheme://host:port`` of a URL: paths and queries often carry tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(unparsable URL)"


def _has_changes(summary: dict[str, Any]) -> bool:
    ch = summary.get("changes") or {}
    return bool(
        summary.get("failed") or any(ch.get(k) for k in ("new_buckets", "rising", "regressions", "repeat_hosts"))
    )


def _subject(summary: dict[str, Any]) -> str:
    ch = summary.get("changes") or {}
    return (
        f"dbgauto run {summary.get('run_id')}: {summary.get('succeeded', 0)} ok, {len(summary.get('failed') or [])}"
        f" failed, {len(ch.get('new_buckets') or [])} new bucket(s), {len(ch.get('rising') or [])} rising,"
        f" {len(ch.get('regressions') or [])} regression(s)"
    )


def _body(summary: dict[str, Any]) -> str:
    ch = summary.get("changes") or {}
    lines = [_subject(summary), ""]
    lines += [
        f"new bucket   {b['bucket']}  ({b['count']} dump(s), {b['hosts']} host(s))" for b in ch.get("new_buckets") or []
    ]
    lines += [
        f"rising       {b['bucket']}  ({b['window']} in 24 h, baseline {b['baseline_daily']}/day)"
        for b in ch.get("rising") or []
    ]
    lines += [
        f"regression   {b['bucket']}  ({b['culprit']} {b['previous_timestamp']} -> {b['timestamp']})"
        for b in ch.get("regressions") or []
    ]
    lines += [f"repeat host  {h['host']}  ({h['crashes']} crashes)" for h in ch.get("repeat_hosts") or []]
    lines += [f"failed       {f['source']}: [{f['error_code']}]" for f in summary.get("failed") or []]
    return "\n".join(lines) + "\n"


def _post(url: str, doc: dict[str, Any], timeout: float) -> None:
    data = json.dumps(doc, sort_keys=True).encode("utf-8")
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if parts.username is not None:  # user:password@host: sent as Basic authentication, not as a host name
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        url = urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    handlers = [urllib.request.ProxyHandler({})] if urlsplit(url).hostname in LOOPBACK else []
    with urllib.request.build_opener(*handlers).open(req, timeout=timeout) as resp:
        if not 200 <= resp.status < 300:
            raise OSError(f"HTTP {resp.status}")


def _mail(opts: NotifyOptions, summary: dict[str, Any]) -> None:
    host, _, port = (opts.smtp or "").rpartition(":") if ":" in (opts.smtp or "") else (opts.smtp, "", "25")
    msg = EmailMessage()
    msg["Subject"] = _subject(summary)
    msg["From"] = opts.mail_from
    msg["To"] = ", ".join(opts.mail_to)
    msg.set_content(_body(summary))
    with smtplib.SMTP(host or "localhost", int(port or 25), timeout=opts.timeout) as smtp:
        if opts.starttls:
            smtp.starttls()
        if opts.smtp_user:
            smtp.login(opts.smtp_user, os.environ.get(PASSWORD_ENV, ""))
        smtp.send_message(msg)


def events_of(summary: dict[str, Any], results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One event per result recorded by the run and one per change (for SIEMs)."""
    run = summary.get("run_id")
    events = [{"event": "result", "run_id": run, **r} for r in results]
    ch = summary.get("changes") or {}
    for kind, key in (("new_bucket", "new_buckets"), ("rising_bucket", "rising"), ("regression", "regressions")):
        events += [{"event": kind, "run_id": run, **item} for item in ch.get(key) or []]
    events += [{"event": "repeat_host", "run_id": run, **item} for item in ch.get("repeat_hosts") or []]
    return events


def _append_events(path: str, events: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in events)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _secrets_of(url: str | None) -> list[str]:
    """The parts of a URL that may be secret: the whole URL, its user info, path and query."""
    if not url:
        return []
    try:
        p = urlsplit(url)
    except ValueError:
        return [url]
    return [url, p.username or "", p.password or "", p.query, p.path if len(p.path) > 1 else ""]


def _guarded(
    name: str, fn: Callable[[], None], timeout: float, problems: list[str], secrets: Iterable[str] = ()
) -> None:
    """Run ``fn`` on a daemon thread; a failure or an overrun becomes one line in ``problems``."""
    failure: list[str] = []

    def target() -> None:
        try:
            fn()
        except Exception as exc:  # any notifier failure is reported, never raised into the batch
            failure.append(f"{type(exc).__name__}: {exc}")

    t = threading.Thread(target=target, daemon=True, name=f"dbgauto-notify-{name}")
    t.start()
    t.join(timeout)
    if t.is_alive():
        problems.append(f"{name}: no answer within {timeout:g}s; gave up (the batch is not affected)")
    elif failure:
        problems.append(f"{name}: {_scrub(failure[0], secrets)}")


def notify(opts: NotifyOptions, summary: dict[str, Any], results: Iterable[dict[str, Any]] = ()) -> list[str]:
    """Send the run summary to every configured notifier; returns the problems (one line each), logged too."""
    problems: list[str] = []
    deadline = opts.timeout * 2 + 1
    if opts.events:
        events = events_of(summary, results)
        path = opts.events
        _guarded(f"events {path}", lambda: _append_events(path, events), deadline, problems)
    if opts.only_changes and not _has_changes(summary):
        return problems
    doc = {"type": "dbgauto.run_summary", **summary}
    url = opts.webhook or os.environ.get(WEBHOOK_ENV)
    if url:
        secrets = _secrets_of(url)
        _guarded(f"webhook {redact_url(url)}", lambda: _post(url, doc, opts.timeout), deadline, problems, secrets)
    if opts.smtp and opts.mail_to:
        secrets = [os.environ.get(PASSWORD_ENV, "")]
        _guarded(f"smtp {opts.smtp}", lambda: _mail(opts, summary), deadline, problems, secrets)
    for p in problems:
        log.warning("notifier %s", p)
    return problems
