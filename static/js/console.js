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
  // Keep live logs scrolled to the newest line unless the reader scrolled up.
  document.addEventListener("htmx:wsAfterMessage", function () {
    dropDuplicateLines();
    document.querySelectorAll(".log[data-follow]").forEach(function (log) {
      if (log.scrollHeight - log.scrollTop - log.clientHeight < 80) { log.scrollTop = log.scrollHeight; }
    });
  });
})();
