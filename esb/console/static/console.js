// Live figures on the routes page: poll the JSON endpoint every 5 s and update the cells in place.
(function () {
  "use strict";
  var table = document.getElementById("routes");
  if (!table) { return; }
  function show(row, field, value) {
    var cell = row.querySelector('[data-field="' + field + '"]');
    if (!cell || value === undefined || value === null) { return; }
    var link = cell.querySelector("a");
    (link || cell).textContent = String(value);
  }
  function refresh() {
    fetch("/api/figures", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        data.routes.forEach(function (f) {
          var row = table.querySelector('tr[data-route="' + CSS.escape(f.route) + '"]');
          if (!row) { return; }
          show(row, "received", f.received); show(row, "delivered", f.delivered);
          show(row, "filtered", f.filtered); show(row, "dead_lettered", f.dead_lettered);
          show(row, "retries", f.retries); show(row, "rate", f.rate);
          show(row, "error_rate", (f.error_rate * 100).toFixed(1) + "%");
          show(row, "p50", f.latency_ms.p50); show(row, "p90", f.latency_ms.p90);
          show(row, "p99", f.latency_ms.p99); show(row, "waiting", f.waiting);
        });
        var at = document.getElementById("figures-at");
        if (at) { at.textContent = new Date().toLocaleTimeString(); }
      })
      .catch(function () { /* the next poll tries again */ });
  }
  setInterval(refresh, 5000);
})();
