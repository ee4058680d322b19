(function () {
  "use strict";
  var table = document.getElementById("dumps");
  var source = document.getElementById("rows");
  if (!table || !source) { return; }
  var doc = JSON.parse(source.textContent);
  var rows = doc.rows, pageSize = doc.page || 100, page = 0;
  var C = {}; doc.columns.forEach(function (n, i) { C[n] = i; });
  var shownCols = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  var numeric = { 9: true, 13: true };
  var view = rows.slice();
  var lower = null;
  var body = table.tBodies[0];
  var filter = document.getElementById("filter"), status = document.getElementById("status");
  var count = document.getElementById("shown"), info = document.getElementById("pageinfo");
  function text(i) {
    if (lower === null) { lower = rows.map(function (r) { return r.join("\u0001").toLowerCase(); }); }
    return lower[i];
  }
  rows.forEach(function (r, i) { r.push(i); });
  var last = doc.columns.length;
  function render() {
    var pages = Math.max(1, Math.ceil(view.length / pageSize));
    if (page >= pages) { page = pages - 1; }
    var frag = document.createDocumentFragment();
    view.slice(page * pageSize, (page + 1) * pageSize).forEach(function (r) {
      var tr = document.createElement("tr");
      if (r[C.status] !== "ok") { tr.className = "failed"; tr.title = r[C.reason]; }
      shownCols.forEach(function (c) {
        var td = document.createElement("td");
        if (c === 0 && r[C.href]) {
          var a = document.createElement("a"); a.href = r[C.href]; a.textContent = r[0]; td.appendChild(a);
          td.title = r[C.path];
        } else if (c === 2 && r[C.reason]) {
          td.textContent = r[2] + ": " + r[C.reason]; td.className = "wrap";
        } else { td.textContent = String(r[c]); }
        if (c === 0 && !r[C.href]) { td.title = r[C.path]; }
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    body.textContent = "";
    body.appendChild(frag);
    count.textContent = String(view.length);
    info.textContent = " page " + (page + 1) + " of " + pages + " ";
  }
  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(function (x) { return x.length > 0; });
    var want = status.value;
    view = rows.filter(function (r) {
      if (want && (want === "ok" ? r[C.status] !== "ok" : r[C.status] === "ok")) { return false; }
      if (!words.length) { return true; }
      var t = text(r[last]);
      for (var k = 0; k < words.length; k++) { if (t.indexOf(words[k]) === -1) { return false; } }
      return true;
    });
    page = 0;
    render();
  }
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th) {
    th.addEventListener("click", function () {
      var col = Number(th.getAttribute("data-col"));
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var num = numeric[col];
      view.sort(function (a, b) {
        var x = a[col], y = b[col];
        if (num) { return dir * ((Number(x) || 0) - (Number(y) || 0)); }
        return dir * (x < y ? -1 : (x > y ? 1 : 0));
      });
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
  apply();
  table.setAttribute("data-script", "ready");
})();
