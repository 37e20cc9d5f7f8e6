// Ops console: the little behaviour that needs script (no inline JS: CSP forbids it).
(function () {
  // Confirmation before destructive actions: <form data-confirm="Delete 3 objects?">
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // A live log gets its full snapshot on subscribe; a line published in that
  // instant may arrive twice: keep the first element of each id.
  function dropDuplicateLines() {
    document.querySelectorAll(".log[id]").forEach(function (log) {
      var seen = {};
      log.querySelectorAll("[id]").forEach(function (line) {
        if (seen[line.id]) { line.remove(); } else { seen[line.id] = true; }
      });
    });
  }
  // Live sockets: the ws extension reconnects after an abnormal close (1006, 1011-1013);
  // wait a random time up to 1 s, 2 s, 4 s ... 30 s, so that many browsers do not all
  // come back at once after a restart.
  htmx.config.wsReconnectDelay = function (retryCount) {
    return Math.random() * Math.min(30000, 1000 * Math.pow(2, retryCount));
  };
  // After a reconnect, fetch the live region again: fragments published while the
  // socket was down are lost, the page's current state is not.
  document.addEventListener("htmx:wsClose", function (event) {
    event.target.setAttribute("data-live-dropped", "");
  });
  document.addEventListener("htmx:wsOpen", function (event) {
    var region = event.target;
    if (!region.hasAttribute("data-live-dropped")) { return; }
    var url = region.getAttribute("ws-connect");
    htmx.ajax("GET", window.location.href, {target: region, swap: "outerHTML", select: '[ws-connect="' + url + '"]'});
  });
  // A fragment that replaces the whole state of an element carries data-seq (its
  // refresh slot): publishers race, so drop one not newer than what the page shows.
  function isStale(html) {
    var incoming = new DOMParser().parseFromString(html, "text/html").querySelectorAll("[id][data-seq]");
    return Array.prototype.some.call(incoming, function (element) {
      var shown = document.getElementById(element.id);
      var seq = shown && shown.getAttribute("data-seq");
      return seq !== null && seq !== "" && element.getAttribute("data-seq") !== "" && Number(element.getAttribute("data-seq")) <= Number(seq);
    });
  }
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    if (isStale(event.detail.message)) { event.preventDefault(); }
  });
  // Keep live logs scrolled to the newest line unless the reader scrolled up.
  document.addEventListener("htmx:wsAfterMessage", function () {
    dropDuplicateLines();
    document.querySelectorAll(".log[data-follow]").forEach(function (log) {
      if (log.scrollHeight - log.scrollTop - log.clientHeight < 80) { log.scrollTop = log.scrollHeight; }
    });
  });
  // Fields that only apply to some values of a select (a healthcheck kind, a strategy):
  // <div data-shown-when="id_strategy:rolling canary"> is hidden otherwise (the server ignores them).
  function applyShownWhen() {
    document.querySelectorAll("[data-shown-when]").forEach(function (element) {
      var rule = element.getAttribute("data-shown-when").split(":");
      var control = document.getElementById(rule[0]);
      if (control) { element.hidden = rule[1].split(" ").indexOf(control.value) < 0; }
    });
  }
  applyShownWhen();
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.tagName === "SELECT") { applyShownWhen(); }
    // A "secret" toggle masks its row's value: <input type=checkbox data-masks="env-value-0">.
    var masked = target.getAttribute("data-masks") && document.querySelector('[name="' + target.getAttribute("data-masks") + '"]');
    if (masked) { masked.type = target.checked ? "password" : "text"; }
  });
})();
