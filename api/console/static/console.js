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
// second from the ledger: the first poll brings the whole curve (however
// long ago it was sent), each later one the seconds from the newest drawn
// on (that second may have grown), while it sends. A delivery a carrier's
// report refines later counts in the second of its report: once sending
// is over, the whole curve is read again, so it adds up to the outcomes.
(function () {
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.dataset.stats, every = 2000, since = 0, xs = [], ys = [], plot = null;
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
  // push adds one second's count: a second already drawn is replaced, a
  // gap since the last second is drawn as zero.
  function push(t, n) {
    var last = xs.length ? xs[xs.length - 1] : null;
    if (last !== null && t <= last) {
      for (var i = xs.length - 1; i >= 0; i--) { if (xs[i] === t) { ys[i] = n; return; } if (xs[i] < t) { break; } }
      return;
    }
    if (last !== null && t > last + 1) {
      xs.push(last + 1); ys.push(0);
      if (t > last + 2) { xs.push(t - 1); ys.push(0); }
    }
    xs.push(t); ys.push(n);
  }
  function chart(rate) {
    if (!rate || !rate.points) { return; }
    rate.points.forEach(function (p) { push(p[0], p[1]); });
    if (xs.length) { since = xs[xs.length - 1]; }
    var total = 0;
    for (var i = 0; i < ys.length; i++) { total += ys[i]; }
    live.dataset.charted = String(total);
    if (plot) { plot.setData([xs, ys]); }
  }
  function tick() {
    var from = since;
    fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "since=" + from, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (s) {
        fill(s);
        if (s.final === true && from !== 0) {
          xs.length = 0; ys.length = 0; since = 0; // the whole curve once more
          setTimeout(tick, 0);
          return;
        }
        chart(s.stats && s.stats.rate);
        if (s.final !== true) { setTimeout(tick, every); } else { live.dataset.done = "true"; }
      })
      .catch(function () { setTimeout(tick, every * 2); });
  }
  tick();
})();
