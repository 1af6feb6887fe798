// Live alerts: listens to /live (Server-Sent Events) and shows each alert transition at once.
// Pages work without it; it only adds what happened since the page was loaded.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var section = document.getElementById("live");
  if (!section) { return; }
  var list = section.querySelector("ul");
  var source = new EventSource("/live");
  source.addEventListener("alert", function (event) {
    var alert;
    try { alert = JSON.parse(event.data); } catch (e) { return; }
    var item = document.createElement("li");
    var link = document.createElement("a");
    link.href = alert.url;
    link.textContent = (alert.state === "resolved" ? "Resolved: " : "") + alert.summary;
    item.appendChild(link);
    item.className = "live-" + alert.state;
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 10) { list.removeChild(list.lastChild); }
    section.classList.remove("live-empty");
    // Rows showing this job (overview, job page) take the state the alert implies until the
    // next reload: a failed run makes it failing, a missed one late; their end makes it ok.
    var implied = { failed_run: "failing", missed_run: "late" }[alert.kind];
    if (alert.job && implied) {
      var selector = '[data-account="' + CSS.escape(alert.account_id) + '"][data-job="' +
        CSS.escape(alert.job) + '"] .state';
      document.querySelectorAll(selector).forEach(function (cell) {
        var state = alert.state === "firing" ? implied : "ok";
        cell.textContent = state;
        cell.className = "state state-" + state;
      });
    }
    document.dispatchEvent(new CustomEvent("backstop:alert", { detail: alert }));
  });
})();
