/* Statemill console: live regions and confirmations. No framework, nothing from the network.
 *
 * An element with data-live="URL" is refreshed from URL every data-every milliseconds: the
 * answer replaces the element's content when its X-Statemill-Version header differs from the
 * element's data-version (so open details and typed text survive an unchanged poll), and
 * polling stops when X-Statemill-Running is "0" (the execution ended). While the user types
 * in a field of the region, the refresh waits.
 */
(function () {
  "use strict";

  function typing(region) {
    var active = document.activeElement;
    return active && region.contains(active) &&
      (active.tagName === "TEXTAREA" || active.tagName === "INPUT" || active.tagName === "SELECT");
  }

  function watch(region) {
    var url = region.getAttribute("data-live");
    var every = parseInt(region.getAttribute("data-every") || "1000", 10);
    function tick() {
      if (typing(region)) { window.setTimeout(tick, every); return; }
      window.fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
        var version = response.headers.get("X-Statemill-Version");
        var running = response.headers.get("X-Statemill-Running");
        return response.text().then(function (text) {
          if (response.ok && version && version !== region.getAttribute("data-version") && !typing(region)) {
            region.innerHTML = text;
            region.setAttribute("data-version", version);
          }
          if (running === "0") {
            region.setAttribute("data-live-done", "1");
          } else {
            window.setTimeout(tick, every);
          }
        });
      }).catch(function () { window.setTimeout(tick, every * 3); });
    }
    window.setTimeout(tick, every);
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), watch);

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  document.body.setAttribute("data-console-ready", "1");
})();
