// Panels that htmx swaps in again (a poll every few seconds while something runs, or
// the answer to an action) keep what the reader was doing:
// - a poll never replaces a panel holding a form the reader has started to fill in
//   (a value changed from the page's) or is typing in; the next poll after they send
//   it or leave it does;
// - the folds (<details id=...>) the reader opened or closed stay so.
(function () {
  "use strict";
  function edited(root) {
    var active = document.activeElement;
    if (active && root.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
      return true;
    }
    return Array.prototype.some.call(root.querySelectorAll("input, textarea, select"), function (el) {
      if (el.tagName === "SELECT") {
        var options = Array.prototype.slice.call(el.options);
        // No option marked selected in the page: the browser shows the first (or none).
        if (!options.some(function (o) { return o.defaultSelected; })) {
          return el.multiple ? options.some(function (o) { return o.selected; }) : el.selectedIndex > 0;
        }
        return options.some(function (o) { return o.selected !== o.defaultSelected; });
      }
      if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
      if (el.type === "hidden" || el.type === "submit") return false;
      return el.value !== el.defaultValue;
    });
  }
  var folds = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    folds = {};
    var target = event.detail.target;
    if (!target || !target.querySelectorAll) return;
    var verb = (event.detail.requestConfig && event.detail.requestConfig.verb) || "";
    if (verb.toLowerCase() === "get" && edited(target)) {
      event.detail.shouldSwap = false;
      return;
    }
    target.querySelectorAll("details[id]").forEach(function (el) { folds[el.id] = el.open; });
  });
  document.addEventListener("htmx:afterSettle", function () {
    Object.keys(folds).forEach(function (id) {
      var el = document.getElementById(id);
      if (el && el.tagName === "DETAILS" && el.open !== folds[id]) el.open = folds[id];
    });
    folds = {};
  });
})();
