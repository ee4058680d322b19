(function () {
  "use strict";
  var table = document.getElementById("dumps");
  if (!table) { return; }
  var body = table.tBodies[0];
  var headers = table.tHead.rows[0].cells;
  var filter = document.getElementById("filter");
  var count = document.getElementById("shown");
  function key(row, col) {
    var cell = row.cells[col];
    var raw = cell.getAttribute("data-sort");
    return raw !== null ? raw : cell.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    var na = parseFloat(a), nb = parseFloat(b);
    if (!isNaN(na) && !isNaN(nb) && String(na) === a && String(nb) === b) { return na - nb; }
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  Array.prototype.forEach.call(headers, function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) { return dir * compare(key(a, col), key(b, col)); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(function (x) { return x.length > 0; });
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var text = row.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = String(shown);
  }
  function fromHash() {
    var m = /^#q=(.*)$/.exec(window.location.hash);
    if (m) {
      try { filter.value = decodeURIComponent(m[1]); } catch (e) { filter.value = ""; }
    }
  }
  function toHash() {
    try { window.history.replaceState(null, "", filter.value ? "#q=" + encodeURIComponent(filter.value) : "#"); } catch (e) { }
  }
  if (filter) {
    fromHash();
    filter.addEventListener("input", function () { applyFilter(); toHash(); });
    window.addEventListener("hashchange", function () { fromHash(); applyFilter(); });
    applyFilter();
  }
  table.setAttribute("data-script", "ready");
})();
