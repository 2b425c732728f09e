// critmin's chart helper for the pages: every chart through critmin.plot(), which
// - turns string axis titles into {text: ...} (the form Plotly.js 4 reads),
// - removes the mode bar's cloud ("Share chart...") button and the Plotly logo,
// - draws nothing and says why when there is no data (an empty state, not axes -1...6).
window.critmin = (function () {
  "use strict";
  var CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["sendChartToCloud", "sendDataToCloud", "editInChartStudio", "lasso2d", "select2d"],
    topojsonURL: "/static/topojson/"
  };

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

  function plot(id, traces, layout, emptyMessage) {
    var element = document.getElementById(id);
    if (isEmpty(traces)) {
      if (window.Plotly && element.data) Plotly.purge(element);
      element.textContent = "";
      element.classList.add("empty");
      var note = document.createElement("p");
      note.className = "empty-state";
      note.setAttribute("role", "status");
      note.textContent = emptyMessage || "No data to draw for this choice.";
      element.appendChild(note);
      return Promise.resolve(null);
    }
    element.classList.remove("empty");
    var old = element.querySelector(".empty-state");
    if (old) old.remove();
    return Plotly.react(element, traces, titled(layout || {}), CONFIG);
  }

  return {plot: plot, config: CONFIG, titled: titled};
})();
