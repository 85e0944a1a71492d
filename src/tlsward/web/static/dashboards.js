/* tlsward dashboards: charts and the "Rescan now" button. Served by tlsward itself; the pages carry no inline
 * script (the Content-Security-Policy forbids it): chart data sits in <script type="application/json"> blocks,
 * which browsers never execute, and this file reads them. Charts are drawn by the vendored Chart.js. */
(function () {
  "use strict";

  var GRID = "#e6eaef";
  var TEXT = "#5b6b7d";

  function readJson(id) {
    var node = document.getElementById(id);
    if (!node) { return null; }
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function dataset(spec, index, chartSpec) {
    var colour = spec.color || "#1c7ed6";
    var set = {
      label: spec.label,
      data: spec.data,
      borderColor: colour,
      backgroundColor: colour,
      borderWidth: chartSpec.type === "line" ? 2 : 0,
      spanGaps: false
    };
    if (chartSpec.type === "line") {
      set.pointRadius = spec.points ? 4 : (spec.data.length > 40 ? 0 : 2);
      set.showLine = !spec.points;
      set.tension = 0;
      set.fill = false;
      if (spec.dashed) { set.borderDash = [6, 4]; set.pointRadius = 0; set.borderWidth = 1.5; }
    }
    if (index === 0 && chartSpec.colors && chartSpec.type === "bar" && !chartSpec.stacked) {
      set.backgroundColor = chartSpec.colors;
    }
    return set;
  }

  function config(spec) {
    var percent = Boolean(spec.percent);
    var y = {
      stacked: Boolean(spec.stacked),
      beginAtZero: spec.min === undefined,
      grid: { color: GRID },
      ticks: {
        color: TEXT,
        callback: function (value) { return percent ? value + " %" : (spec.unit ? value + " " + spec.unit : value); }
      }
    };
    if (spec.min !== undefined) { y.min = spec.min; }
    if (spec.max !== undefined) { y.max = spec.max; }
    if (percent && spec.stacked) { y.max = 100; }
    return {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets.map(function (d, i) { return dataset(d, i, spec); }) },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: Boolean(spec.stacked), grid: { display: false }, ticks: { color: TEXT, maxRotation: 0, autoSkip: true } },
          y: y
        },
        plugins: {
          legend: { position: "bottom", labels: { color: TEXT, boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                var value = item.parsed.y;
                if (value === null || value === undefined) { return item.dataset.label + ": -"; }
                var shown = percent ? value.toFixed(spec.stacked ? 1 : 3) + " %" : (spec.unit ? value.toFixed(1) + " " + spec.unit : value);
                return item.dataset.label + ": " + shown;
              }
            }
          }
        }
      }
    };
  }

  function drawCharts() {
    if (typeof window.Chart === "undefined") { return; }
    var canvases = document.querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) {
      var canvas = canvases[i];
      var spec = readJson(canvas.getAttribute("data-chart"));
      if (!spec) { continue; }
      new window.Chart(canvas, config(spec));
      canvas.setAttribute("data-drawn", "true");
    }
  }

  /* -- Rescan now: POST /api/v1/scans, follow /api/v1/scans/{id}/events, reload when done. -------------- */

  var LIVE_KEY = "tlsward.rescan:";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function showLiveTimings(target) {
    var raw = null;
    try { raw = window.sessionStorage.getItem(LIVE_KEY + target); } catch (e) { return; }
    if (!raw) { return; }
    var saved;
    try { saved = JSON.parse(raw); } catch (e) { return; }
    if (!saved || !saved.timings || Date.now() - saved.at > 15 * 60 * 1000) { return; }
    var cells = document.querySelectorAll("[data-live]");
    for (var i = 0; i < cells.length; i++) {
      var value = saved.timings[cells[i].getAttribute("data-live")];
      cells[i].textContent = (value === null || value === undefined) ? "-" : value.toFixed(1) + " ms";
    }
    var note = document.getElementById("live-note");
    if (note) { note.textContent = "Your rescan: " + new Date(saved.at).toISOString().replace("T", " ").slice(0, 19) + " UTC."; }
  }

  function setupRescan() {
    var box = document.getElementById("rescan-box");
    if (!box) { return; }
    var target = box.getAttribute("data-target");
    showLiveTimings(target);
    var button = document.getElementById("rescan");
    var status = document.getElementById("rescan-status");

    function say(text, failed) {
      status.textContent = text;
      status.className = failed ? "failed" : "";
      box.setAttribute("data-state", failed ? "failed" : text);
    }

    function finish(job) {
      if (job.status === "done") {
        var result = job.result || {};
        try {
          window.sessionStorage.setItem(LIVE_KEY + target, JSON.stringify({ at: Date.now(), timings: result.timings || {} }));
        } catch (e) { /* private mode: the timings are simply not shown after the reload */ }
        say("done, reloading…", false);
        box.setAttribute("data-state", "done");
        window.location.reload();
      } else {
        say("failed: " + (job.error || "unknown error"), true);
        button.disabled = false;
      }
    }

    function follow(id) {
      var source = new EventSource("/api/v1/scans/" + encodeURIComponent(id) + "/events");
      source.addEventListener("status", function (event) {
        var job = JSON.parse(event.data);
        say(job.status === "running" ? "scanning…" : job.status + "…", false);
      });
      source.addEventListener("done", function (event) {
        source.close();
        finish(JSON.parse(event.data));
      });
      source.addEventListener("timeout", function () {
        source.close();
        say("still running after the stream's time limit; reload later", true);
        button.disabled = false;
      });
      source.onerror = function () {
        if (source.readyState === EventSource.CLOSED) { return; }
        source.close();
        say("lost the event stream; reload the page to see the result", true);
        button.disabled = false;
      };
    }

    button.addEventListener("click", function () {
      button.disabled = true;
      say("starting…", false);
      var body = { target: target };
      if (box.getAttribute("data-sni")) { body.sni = box.getAttribute("data-sni"); }
      if (box.getAttribute("data-connect")) { body.connect = box.getAttribute("data-connect"); }
      fetch("/api/v1/scans", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(body)
      }).then(function (response) {
        if (response.status === 401) {
          window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
          return null;
        }
        return response.json().then(function (data) {
          if (response.status !== 202) {
            throw new Error(data && data.detail ? data.detail : "HTTP " + response.status);
          }
          return data;
        });
      }).then(function (data) {
        if (data) { say("queued…", false); follow(data.id); }
      }).catch(function (error) {
        say("could not start the scan: " + error.message, true);
        button.disabled = false;
      });
    });
  }

  function start() {
    drawCharts();
    setupRescan();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
