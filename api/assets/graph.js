// Switchyard console: draw Graphviz graphs in the browser.
// Every <figure class="graph"><pre class="dot">…</pre></figure> (the
// `graph` macro) gets an SVG drawing of its DOT source, laid out by the
// vendored Graphviz (viz-global.js, a WebAssembly build); the source is
// then hidden. Drawn again after every htmx swap (live updates), so a
// swapped-in graph is laid out anew. On any error the source stays shown
// with the reason above it. Nodes keep their DOT `class` (e.g. "marked"),
// which console.css colours for light and dark mode. The SVG keeps its
// natural size: console.css shrinks it to fit a wide page and lets it
// scroll sideways on a narrow one.
(function () {
  "use strict";

  var instance = null;

  function viz() {
    if (!instance) instance = window.Viz.instance();
    return instance;
  }

  function fail(figure, pre, text) {
    var old = figure.querySelector(".graph-error");
    if (!old) {
      old = document.createElement("p");
      old.className = "graph-error bad";
      figure.insertBefore(old, pre);
    }
    old.textContent = "The graph could not be drawn (" + text + "); its DOT source:";
    pre.hidden = false;
  }

  function draw(figure) {
    var pre = figure.querySelector("pre.dot");
    if (!pre || figure.dataset.drawn === pre.textContent) return;
    var source = pre.textContent;
    if (!window.Viz) {
      fail(figure, pre, "Graphviz did not load");
      return;
    }
    viz().then(function (v) {
      var svg = v.renderSVGElement(source);
      svg.setAttribute("role", "img");
      var old = figure.querySelector("svg");
      if (old) old.replaceWith(svg);
      else figure.insertBefore(svg, pre);
      var err = figure.querySelector(".graph-error");
      if (err) err.remove();
      pre.hidden = true;
      figure.dataset.drawn = source;
      figure.dispatchEvent(new CustomEvent("graph:drawn", { bubbles: true }));
    }).catch(function (e) {
      fail(figure, pre, e && e.message ? e.message : String(e));
    });
  }

  function drawAll() {
    document.querySelectorAll("figure.graph").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
