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
  // Keep live logs scrolled to the newest line unless the reader scrolled up.
  document.addEventListener("htmx:wsAfterMessage", function () {
    document.querySelectorAll(".log[data-follow]").forEach(function (log) {
      if (log.scrollHeight - log.scrollTop - log.clientHeight < 80) { log.scrollTop = log.scrollHeight; }
    });
  });
})();
