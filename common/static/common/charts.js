// Render every <div data-chart="ID"> from the JSON spec in <script id="ID" type="application/json">
// (written by Django's json_script). No inline script, so the CSP stays strict;
// charts inside fragments swapped in by htmx are drawn too.
(function () {
  "use strict";
  function draw(root) {
    if (typeof Plotly === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      // A chart folded in a closed <details> has no width yet: drawn when it opens.
      if (el.closest("details:not([open])")) return;
      var source = document.getElementById(el.dataset.chart);
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      var layout = Object.assign({ margin: { t: 30, r: 10, b: 40, l: 50 }, height: 280 }, spec.layout || {});
      Plotly.newPlot(el, spec.data || [], layout, { displaylogo: false, responsive: true });
      el.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // The whole document: with an outerHTML swap the event's target may be the old node.
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  // "toggle" does not bubble: listen in the capture phase.
  document.addEventListener("toggle", function (event) {
    if (event.target.open) draw(event.target);
  }, true);
})();
