"""The index page in a real browser (headless Chromium; skipped when it is not installed): the status filter
shows the skipped and failed rows, a word filter finds a skip reason, sorting by name orders the rows, all
under the page's own Content-Security-Policy (the checking script is allowed by its hash)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from batchkit import run_cli

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="needs Chromium (apt-get install -y chromium)")

CHECK = """(function () {
  var s = document.getElementById("status"), f = document.getElementById("filter");
  var t = document.getElementById("dumps"), out = {};
  function names() {
    return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[0].textContent; });
  }
  out.ready = t.getAttribute("data-script");
  out.all = names();
  s.value = "skipped"; s.dispatchEvent(new Event("change")); out.skipped = names();
  s.value = "failed"; s.dispatchEvent(new Event("change")); out.failed = names();
  s.value = "ok"; s.dispatchEvent(new Event("change")); out.ok = names();
  s.value = ""; s.dispatchEvent(new Event("change"));
  f.value = "USER-MODE minidump"; f.dispatchEvent(new Event("input")); out.word = names();
  f.value = ""; f.dispatchEvent(new Event("input"));
  t.tHead.rows[0].cells[0].click(); out.by_name = names();
  t.tHead.rows[0].cells[0].click(); out.by_name_desc = names();
  var pre = document.createElement("pre"); pre.id = "check"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();"""


def test_status_filter_word_filter_and_sort_in_chromium(tmp_path: Path, triage_x64_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "PC1").mkdir(parents=True)
    (src / "PC2").mkdir()
    shutil.copyfile(triage_x64_path, src / "PC1" / "b-new.dmp")
    shutil.copyfile(triage_x64_path, src / "PC2" / "c-old.dmp")
    past = time.time() - 30 * 86400
    os.utime(src / "PC2" / "c-old.dmp", (past, past))
    (src / "PC2" / "a-user.dmp").write_bytes(b"MDMP\x93\xa7\x00\x00" + bytes(56))
    (src / "PC1" / "d-bad.dmp").write_bytes(triage_x64_path.read_bytes()[:0x900])
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * 86400))
    res = run_cli("batch", src, "--out", out, "--no-convert", "--since", since)
    assert res.returncode == 1, res.stderr  # d-bad.dmp failed
    html = (out / "index.html").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(CHECK.encode()).digest()).decode()
    html = re.sub(r"script-src '", f"script-src 'sha256-{digest}' '", html, count=1)
    page = out / "checked.html"
    page.write_text(html.replace("</body>", f"<script>{CHECK}</script>\n</body>"), encoding="utf-8")
    cmd = [
        str(BROWSER),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=3000",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    m = re.search(r'<pre id="check">([^<]*)</pre>', dom)
    assert m is not None, "the checking script did not run (CSP?)"
    got = json.loads(m.group(1).replace("&quot;", '"'))
    assert got["ready"] == "ready"
    assert sorted(got["all"]) == ["a-user.dmp", "b-new.dmp", "c-old.dmp", "d-bad.dmp"]
    assert sorted(got["skipped"]) == ["a-user.dmp", "c-old.dmp"]
    assert got["failed"] == ["d-bad.dmp"]
    assert got["ok"] == ["b-new.dmp"]
    assert got["word"] == ["a-user.dmp"]  # found by its reason, case-insensitively
    assert got["by_name"] == ["a-user.dmp", "b-new.dmp", "c-old.dmp", "d-bad.dmp"]
    assert got["by_name_desc"] == ["d-bad.dmp", "c-old.dmp", "b-new.dmp", "a-user.dmp"]
