// Loa console: progressive enhancement. Every page works without this file;
// with it, htmx requests carry the CSRF token and the live view updates.
"use strict";
document.addEventListener("htmx:configRequest", function (e) {
  var t = document.body.dataset.csrf;
  if (t) { e.detail.headers["X-CSRF-Token"] = t; }
});

// Times are Vietnam's wherever the browser is: the chart's axis shows
// Asia/Ho_Chi_Minh, as every time the console writes.
window.loaConsole = {
  zone: "Asia/Ho_Chi_Minh",
  chartDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), window.loaConsole.zone); }
};

// Live delivery view: poll the counters, fill the cells that name them
// (data-k="sent", data-k="channels.sms.sent" …) and chart deliveries per
// second from the difference between two polls.
(function () {
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.dataset.stats, every = 2000, last = null, xs = [], ys = [], plot = null;
  var el = document.getElementById("rate-chart");
  if (el && window.uPlot) {
    plot = new uPlot({ width: Math.max(300, el.clientWidth || 600), height: 240,
      series: [{}, { label: el.dataset.label || "/s", stroke: "#0b5cab", width: 2, fill: "rgba(11,92,171,0.12)" }],
      axes: [{}, { label: el.dataset.label || "/s" }], scales: { x: { time: true } },
      tzDate: window.loaConsole.chartDate }, [xs, ys], el);
    window.addEventListener("resize", function () { plot.setSize({ width: Math.max(300, el.clientWidth), height: 240 }); });
  }
  function get(o, path) {
    return path.split(".").reduce(function (v, k) { return v == null ? undefined : v[k]; }, o);
  }
  function fill(s) {
    live.querySelectorAll("[data-k]").forEach(function (n) {
      var v = get(s, n.dataset.k);
      n.textContent = v == null ? "0" : Number(v).toLocaleString("vi-VN");
    });
    var st = document.getElementById("live-status");
    if (st && s.status) { st.textContent = s.status_label || s.status; st.className = "badge status-" + s.status.replace(/_/g, "-"); st.dataset.status = s.status; }
  }
  function tick() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (s) {
        fill(s);
        var now = Date.now() / 1000, done = s.final === true;
        var total = (s.stats.sent || 0) + (s.stats.failed || 0) + (s.stats.expired || 0) + (s.stats.cancelled || 0);
        if (last) {
          var dt = now - last.t;
          if (dt > 0) { xs.push(now); ys.push(Math.max(0, (total - last.n) / dt)); if (xs.length > 900) { xs.shift(); ys.shift(); } }
          if (plot) { plot.setData([xs, ys]); }
        }
        last = { t: now, n: total };
        if (!done) { setTimeout(tick, every); } else { live.dataset.done = "true"; }
      })
      .catch(function () { setTimeout(tick, every * 2); });
  }
  tick();
})();
