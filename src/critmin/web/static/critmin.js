// critmin's chart helper for the pages: every chart through critmin.plot(), which
// - turns string axis titles into {text: ...} (the form Plotly.js 4 reads),
// - removes the mode bar's cloud ("Share chart...") button and the Plotly logo,
// - draws nothing and says why when there is no data (an empty state, not axes -1...6),
// - draws once Plotly.js has loaded (after the page's load event, so its text shows
//   first), and on a repeat visit in the same tab shows at once the picture of the same
//   chart drawn last time (kept in sessionStorage under a digest of its data and layout),
//   until Plotly.js has drawn it live (then hover and the mode bar work).
window.critmin = (function () {
  "use strict";
  var CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["sendChartToCloud", "sendDataToCloud", "editInChartStudio", "lasso2d", "select2d"],
    topojsonURL: document.documentElement.getAttribute("data-topojson") || "/static/topojson/"
  };
  var PREFIX = "critmin-chart:";
  var MAX_PICTURE = 1500000; // characters; a larger drawing is not kept
  var waiting = [];
  var drawn = {}; // element id → key of the chart it shows live

  function titled(layout) {
    Object.keys(layout).forEach(function (key) {
      var axis = layout[key];
      if (/^[xy]axis\d*$/.test(key) && axis && typeof axis.title === "string") {
        axis.title = {text: axis.title};
      }
    });
    if (typeof layout.title === "string") layout.title = {text: layout.title};
    return layout;
  }

  function values(trace) {
    if (trace.type === "sankey") return (trace.link || {}).value;
    if (trace.type === "choropleth") return trace.z;
    return trace.orientation === "h" ? trace.x : trace.y;
  }

  function isEmpty(traces) {
    return traces.every(function (trace) {
      var v = values(trace);
      return !v || v.length === 0 || v.every(function (x) { return x === null || x === undefined; });
    });
  }

  function digest(text) { // FNV-1a, 32 bits: tells one chart's data and layout from another's
    var h = 0x811c9dc5;
    for (var i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return (h >>> 0).toString(36) + "." + text.length.toString(36);
  }

  function storage() {
    try { return window.sessionStorage; } catch (error) { return null; }
  }

  function put(store, key, value) {
    try {
      store.setItem(key, value);
    } catch (full) { // over the quota: forget the older pictures, keep this one
      Object.keys(store).forEach(function (k) { if (k.indexOf(PREFIX) === 0) store.removeItem(k); });
      try { store.setItem(key, value); } catch (still) { /* too large: not kept */ }
    }
  }

  function plotlyStyle() { // the rules Plotly.js adds to the page (a picture needs them)
    var style = document.getElementById("plotly.js-style-global");
    try {
      return Array.prototype.map.call(style.sheet.cssRules, function (r) { return r.cssText; }).join("\n");
    } catch (error) {
      return "";
    }
  }

  function keep(id) { // the live drawing of `id`, for the next visit of this page in the tab
    var element = document.getElementById(id), store = storage();
    if (!store || !element || !drawn[id] || !element.querySelector(".main-svg")) return;
    var picture = JSON.stringify({width: element.clientWidth, html: element.innerHTML});
    var style = plotlyStyle();
    if (picture.length > MAX_PICTURE || !style) return;
    put(store, PREFIX + "style", style);
    put(store, drawn[id], picture);
  }

  function show(element, key) { // the picture kept under `key`, if it fits this page's width
    var store = storage(), kept = store && store.getItem(key);

    if (!kept) return false;
    try {
      kept = JSON.parse(kept);
    } catch (error) {
      return false;
    }
    var style = store.getItem(PREFIX + "style");
    if (!style || Math.abs(kept.width - element.clientWidth) > 40) return false;
    if (!document.getElementById("critmin-picture-style")) {
      var sheet = document.createElement("style");
      sheet.id = "critmin-picture-style";
      sheet.textContent = style;
      document.head.appendChild(sheet);
    }
    element.innerHTML = kept.html;
    element.classList.add("js-plotly-plot"); // what Plotly.js's rules select on
    element.setAttribute("data-picture", "");
    return true;
  }

  function ready() { return !!window.Plotly && document.readyState !== "loading"; }

  function whenReady(run) {
    if (ready()) return run();
    waiting.push(run);
  }

  function flush() {
    if (!ready()) return;
    var runs = waiting;
    waiting = [];
    runs.forEach(function (run) { run(); });
  }
  document.addEventListener("DOMContentLoaded", flush);
  // Plotly.js (1.5 MB; some 0.2 s to run) runs once the page has loaded and been painted:
  // text, tables and the pictures show first. The page preloads it, so the file is there.
  function loadPlotly() {
    var src = document.documentElement.getAttribute("data-plotly");
    if (!src || window.Plotly) return flush();
    var script = document.createElement("script");
    script.src = src;
    script.onload = flush;
    document.head.appendChild(script);
  }
  window.addEventListener("load", function () { // after the next frame is painted
    requestAnimationFrame(function () { setTimeout(loadPlotly, 0); });
  });
  window.addEventListener("pagehide", function () { Object.keys(drawn).forEach(keep); });

  function empty(element, emptyMessage) {
    if (window.Plotly && element.data) Plotly.purge(element);
    element.textContent = "";
    element.classList.add("empty");
    var note = document.createElement("p");
    note.className = "empty-state";
    note.setAttribute("role", "status");
    note.textContent = emptyMessage || "No data to draw for this choice.";
    element.appendChild(note);
  }

  function plot(id, traces, layout, emptyMessage) {
    var element = document.getElementById(id);
    if (isEmpty(traces)) {
      delete drawn[id];
      empty(element, emptyMessage);
      return Promise.resolve(null);
    }
    layout = titled(layout || {});
    var key = PREFIX + location.pathname + location.search + "#" + id + ":" +
      digest(JSON.stringify([traces, layout]));
    element.classList.remove("empty");
    var old = element.querySelector(".empty-state");
    if (old) old.remove();
    if (!ready() && !element.data) show(element, key);
    return new Promise(function (resolve, reject) {
      whenReady(function () {
        if (element.hasAttribute("data-picture")) { // make room for the live chart
          element.textContent = "";
          element.removeAttribute("data-picture");
        }
        drawn[id] = key;
        Plotly.react(element, traces, layout, CONFIG).then(resolve, reject);
      });
    });
  }

  return {plot: plot, config: CONFIG, titled: titled};
})();
