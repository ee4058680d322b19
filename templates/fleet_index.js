(function () {
  "use strict";
  // The rows arrive once, compact (dbgauto/report/fleet.py): coded columns hold indexes into doc.dicts.
  // Filtering tests each distinct value of a coded column once per word, then the rows by index; sorting
  // compares precomputed ranks. One page of rows is in the DOM at a time.
  var table = document.getElementById("dumps");
  var source = document.getElementById("rows");
  if (!table || !source) { return; }
  var doc = JSON.parse(source.textContent);
  var rows = doc.rows, dicts = doc.dicts, n = rows.length, pageSize = doc.page || 100, page = 0;
  var C = {}; doc.columns.forEach(function (name, i) { C[name] = i; });
  var coded = [], plain = [];
  doc.columns.forEach(function (name, i) {
    if (dicts[i]) { coded.push(i); } else if (name !== "report_file" && name !== "warnings") { plain.push(i); }
  });
  var numeric = { build: true, warnings: true };
  var body = table.tBodies[0];
  var filter = document.getElementById("filter"), status = document.getElementById("status");
  var count = document.getElementById("shown"), info = document.getElementById("pageinfo");
  var view = new Array(n);
  for (var i = 0; i < n; i++) { view[i] = i; }

  function val(r, c) { var d = dicts[c]; return d ? d[r[c]] : r[c]; }

  var shown = ["file", "host", "status", "time", "bugcheck", "code", "culprit", "bucket", "build", "machine",
    "process", "engine", "warnings"].map(function (name) { return C[name]; });
  function render() {
    var pages = Math.max(1, Math.ceil(view.length / pageSize));
    if (page >= pages) { page = pages - 1; }
    var frag = document.createDocumentFragment();
    var end = Math.min(view.length, (page + 1) * pageSize);
    for (var k = page * pageSize; k < end; k++) {
      var r = rows[view[k]], st = val(r, C.status), reason = r[C.reason];
      var tr = document.createElement("tr");
      if (st !== "ok") { tr.className = st === "skipped" ? "skipped" : "failed"; tr.title = reason; }
      for (var j = 0; j < shown.length; j++) {
        var c = shown[j], td = document.createElement("td");
        if (c === C.file) {
          var href = r[C.report_file] ? val(r, C.report_dir) + r[C.report_file] : "";
          if (href) {
            var a = document.createElement("a"); a.href = href; a.textContent = r[c]; td.appendChild(a);
          } else { td.textContent = r[c]; }
          td.title = val(r, C.dir) + r[c];
        } else if (c === C.status && reason) {
          td.textContent = st + ": " + reason; td.className = "wrap";
        } else { td.textContent = String(val(r, c)); }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    body.textContent = "";
    body.appendChild(frag);
    count.textContent = String(view.length);
    info.textContent = " page " + (page + 1) + " of " + pages + " ";
  }

  var lowerDicts = null, lowerPlain = null, lowerPaths = null;
  function lowered() {
    if (lowerDicts) { return; }
    lowerDicts = dicts.map(function (d) { return d ? d.map(function (x) { return String(x).toLowerCase(); }) : null; });
    lowerPlain = {};
    plain.forEach(function (c) {
      var a = new Array(n);
      for (var i = 0; i < n; i++) { a[i] = String(rows[i][c]).toLowerCase(); }
      lowerPlain[c] = a;
    });
  }
  function paths() {  // folder + file, for a word with a separator in it (rare: built when first needed)
    if (!lowerPaths) {
      lowerPaths = new Array(n);
      for (var i = 0; i < n; i++) { lowerPaths[i] = (lowerDicts[C.dir][rows[i][C.dir]] + lowerPlain[C.file][i]); }
    }
    return lowerPaths;
  }
  // Per word: for each coded column, which of its distinct values contain the word.
  function matcher(word) {
    var hit = {};
    coded.forEach(function (c) {
      var d = lowerDicts[c], m = new Uint8Array(d.length), any = false;
      for (var k = 0; k < d.length; k++) { if (d[k].indexOf(word) !== -1) { m[k] = 1; any = true; } }
      if (any) { hit[c] = m; }
    });
    var cols = Object.keys(hit).map(Number);
    var full = /[\\/]/.test(word) ? paths() : null;
    return function (i) {
      var r = rows[i];
      for (var k = 0; k < cols.length; k++) { if (hit[cols[k]][r[cols[k]]]) { return true; } }
      for (k = 0; k < plain.length; k++) { if (lowerPlain[plain[k]][i].indexOf(word) !== -1) { return true; } }
      return full !== null && full[i].indexOf(word) !== -1;
    };
  }
  function wantStatus(value) {
    var d = dicts[C.status], keep = new Uint8Array(d.length);
    for (var k = 0; k < d.length; k++) {
      keep[k] = !value || (value === "failed" ? d[k].indexOf("failed") === 0 : d[k] === value) ? 1 : 0;
    }
    return keep;
  }
  var sortCol = null, sortDir = 1;
  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(function (x) { return x.length > 0; });
    if (words.length) { lowered(); }
    var tests = words.map(matcher), keep = wantStatus(status.value), sc = C.status, out = [];
    for (var i = 0; i < n; i++) {
      if (!keep[rows[i][sc]]) { continue; }
      var ok = true;
      for (var w = 0; w < tests.length && ok; w++) { ok = tests[w](i); }
      if (ok) { out.push(i); }
    }
    view = out;
    if (sortCol !== null) { sortView(); }
    page = 0;
    render();
  }
  // Sort keys: every column becomes one rank per row (equal values, equal ranks), computed once per column:
  // a coded column ranks its distinct values; a plain one sorts its distinct values with the engine's own
  // sort. A sort is then a native numeric sort of rank * 2^26 + row (ties keep row order): no script call
  // per comparison, which is what kept a 100,000-row string sort over 300 ms.
  var keys = {}, SHIFT = 67108864;
  function ranks(values, num) {  // distinct values -> Map(value -> rank)
    var order = values.slice();
    if (num) { order.sort(function (a, b) { return a - b; }); } else { order.sort(); }
    var m = new Map();
    for (var k = 0; k < order.length; k++) { if (!m.has(order[k])) { m.set(order[k], m.size); } }
    return m;
  }
  function keyOf(col) {
    if (keys[col]) { return keys[col]; }
    var d = dicts[col], num = numeric[doc.columns[col]], key = new Int32Array(n), i, m;
    if (d) {
      m = ranks(d.map(function (x) { return num ? (Number(x) || 0) : x; }), num);
      var rank = new Int32Array(d.length);
      for (i = 0; i < d.length; i++) { rank[i] = m.get(num ? (Number(d[i]) || 0) : d[i]); }
      for (i = 0; i < n; i++) { key[i] = rank[rows[i][col]]; }
    } else {
      var seen = new Map();
      for (i = 0; i < n; i++) {
        var v = num ? (Number(rows[i][col]) || 0) : String(rows[i][col]);
        if (!seen.has(v)) { seen.set(v, 0); }
      }
      m = ranks(Array.from(seen.keys()), num);
      for (i = 0; i < n; i++) { key[i] = m.get(num ? (Number(rows[i][col]) || 0) : String(rows[i][col])); }
    }
    keys[col] = key;
    return key;
  }
  function sortView() {
    var key = keyOf(sortCol), top = 0, len = view.length, comp = new Float64Array(len), i;
    if (sortDir < 0) { for (i = 0; i < n; i++) { if (key[i] > top) { top = key[i]; } } }
    for (i = 0; i < len; i++) {
      var r = view[i];
      comp[i] = (sortDir < 0 ? top - key[r] : key[r]) * SHIFT + r;
    }
    comp.sort();
    for (i = 0; i < len; i++) { view[i] = comp[i] % SHIFT; }
  }
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th) {
    th.addEventListener("click", function () {
      sortCol = C[th.getAttribute("data-col")];
      sortDir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", sortDir === 1 ? "ascending" : "descending");
      sortView();
      page = 0;
      render();
    });
  });
  document.getElementById("prev").addEventListener("click", function () { if (page > 0) { page -= 1; render(); } });
  document.getElementById("next").addEventListener("click", function () { page += 1; render(); });
  function fromHash() {
    var m = /^#q=(.*)$/.exec(window.location.hash);
    if (m) { try { filter.value = decodeURIComponent(m[1]); } catch (e) { filter.value = ""; } }
  }
  function toHash() {
    try { window.history.replaceState(null, "", filter.value ? "#q=" + encodeURIComponent(filter.value) : "#"); } catch (e) { }
  }
  filter.addEventListener("input", function () { apply(); toHash(); });
  status.addEventListener("change", apply);
  window.addEventListener("hashchange", function () { fromHash(); apply(); });
  var bt = document.getElementById("buckets");
  if (bt) {
    Array.prototype.forEach.call(bt.querySelectorAll("a.bucket"), function (a) {
      a.addEventListener("click", function () { filter.value = a.getAttribute("data-bucket"); apply(); toHash(); table.scrollIntoView(); });
    });
    var bh = bt.tHead.rows[0].cells, bb = bt.tBodies[0];
    Array.prototype.forEach.call(bh, function (th, col) {
      th.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(bh, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var list = Array.prototype.slice.call(bb.rows);
        list.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-sort"), y = b.cells[col].getAttribute("data-sort");
          if (x !== null && y !== null) { return dir * (Number(x) - Number(y)); }
          x = a.cells[col].textContent; y = b.cells[col].textContent;
          return dir * (x < y ? -1 : (x > y ? 1 : 0));
        });
        list.forEach(function (r) { bb.appendChild(r); });
      });
    });
  }
  fromHash();
  if (filter.value || status.value) { apply(); } else { render(); }
  table.setAttribute("data-script", "ready");
})();
