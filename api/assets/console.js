// Switchyard console: the little the pages need beyond htmx.
// * Errors of htmx requests are shown in the flash area (#flash): the JSON
//   error's `reason`, or the console error page's #error-reason.
// * The live-update (SSE) connection's state is shown in #live-state; a
//   hidden tab closes its streams and reopens them (replay=1) when shown.
// * Inputs marked hx-preserve survive live refreshes and are cleared after
//   their form's request succeeded.
// * <time datetime="…" data-age> shows a relative age ("3 min ago"),
//   refreshed every 10 s and after every swap; the ISO time is its tooltip.
(function () {
  "use strict";

  function flash(text) {
    var f = document.getElementById("flash");
    if (!f) return;
    f.textContent = text;
    f.hidden = false;
  }

  function reasonOf(xhr) {
    var text = xhr.status + " " + xhr.statusText;
    try {
      var type = xhr.getResponseHeader("content-type") || "";
      if (type.indexOf("json") >= 0) {
        var body = JSON.parse(xhr.responseText);
        if (body.reason) text = body.reason;
      } else if (type.indexOf("html") >= 0) {
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var r = doc.getElementById("error-reason");
        if (r) text = r.textContent;
      }
    } catch (_) {
      // keep the status line
    }
    return text;
  }

  document.addEventListener("htmx:responseError", function (e) {
    flash(reasonOf(e.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    flash("The server cannot be reached.");
  });
  // A form's text inputs keep their content across live refreshes
  // (hx-preserve); once the form's own request succeeded, clear them.
  var sent = {};
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.tagName === "FORM") {
      sent[e.detail.requestConfig ? e.detail.requestConfig.path : ""] = Array.prototype.map.call(
        elt.querySelectorAll("input[hx-preserve][id]"),
        function (i) { return i.id; }
      );
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var path = e.detail.requestConfig ? e.detail.requestConfig.path : "";
    var ids = sent[path];
    delete sent[path];
    if (!ids || !e.detail.successful) return;
    ids.forEach(function (id) {
      var i = document.getElementById(id);
      if (i) i.value = "";
    });
  });
  document.addEventListener("click", function (e) {
    if (e.target && e.target.id === "flash") e.target.hidden = true;
  });

  function age(seconds) {
    if (seconds < 5) return "just now";
    if (seconds < 60) return Math.floor(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function ages() {
    var now = Date.now();
    document.querySelectorAll("time[data-age]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (isNaN(at)) return;
      t.textContent = at > now + 5000 ? "in " + age((at - now) / 1000).replace(" ago", "") : age((now - at) / 1000);
      t.title = t.getAttribute("datetime");
    });
  }

  // Live updates: the SSE connection's state, on the element that holds it
  // (data-live="open" | "error") and in the header's #live-state.
  function live(e, state, text) {
    if (e.target && e.target.dataset) e.target.dataset.live = state;
    var s = document.getElementById("live-state");
    if (s) {
      s.textContent = text;
      s.className = "live-state " + state;
    }
  }
  document.addEventListener("htmx:sseOpen", function (e) {
    live(e, "open", "● live");
  });
  document.addEventListener("htmx:sseError", function (e) {
    live(e, "error", "○ reconnecting…");
  });

  // Live streams end when the page is left: a page kept in the browser's
  // back/forward cache would otherwise keep its stream's connection open,
  // and after six such pages the browser has no connection to this host
  // left (HTTP/1.1), so the next page never loads. A page shown again from
  // that cache is reloaded (its stream is gone and its content is stale).
  window.addEventListener("pagehide", function () {
    document.querySelectorAll("[sse-connect]").forEach(function (el) {
      var data = el["htmx-internal-data"];
      if (data && data.sseEventSource) data.sseEventSource.close();
    });
  });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) location.reload();
  });

  // Hidden tabs hold no live stream either: each open stream holds one of
  // the six connections a browser allows per host over HTTP/1.1, so a
  // seventh console tab would never load. A tab that is hidden closes its
  // streams; shown again, it reconnects through the SSE extension's own
  // retry path and asks for every topic once (`replay=1`), since it may
  // have missed changes meanwhile.
  if (window.htmx) {
    var sources = [];
    var paused = [];
    var resumed = false;
    htmx.createEventSource = function (url) {
      if (resumed) url += (url.indexOf("?") < 0 ? "?" : "&") + "replay=1";
      var source = new EventSource(url);
      sources.push(source);
      return source;
    };
    document.addEventListener("visibilitychange", function () {
      sources = sources.filter(function (s) { return s.readyState !== EventSource.CLOSED; });
      if (document.hidden) {
        sources.forEach(function (s) { s.close(); });
        paused = paused.concat(sources);
        sources = [];
        var state = document.getElementById("live-state");
        if (state && paused.length) {
          state.textContent = "○ paused";
          state.className = "live-state paused";
        }
        document.querySelectorAll("[sse-connect]").forEach(function (el) {
          el.dataset.live = "paused";
        });
      } else if (paused.length) {
        resumed = true;
        var again = paused;
        paused = [];
        // The extension reconnects a closed source on its error event.
        again.forEach(function (s) { if (s.onerror) s.onerror(new Event("error")); });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", ages);
  document.addEventListener("htmx:afterSettle", ages);
  setInterval(ages, 10000);
})();
