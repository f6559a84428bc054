// The results page's export list: rows of queued or running exports poll their status
// endpoint and update the <progress> bar, the step and the download link. Polls start every
// second and slow down to every 15 s; a job that stops moving is marked failed by the server
// (outcomes.export.jobs.export_sweep), which ends the polling, and polling gives up after two
// hours in any case (the page says to reload). Without JavaScript the page still lists the
// latest exports; reloading shows progress.
(function () {
  "use strict";

  function render(row, s) {
    var bar = row.querySelector("progress");
    var text = row.querySelector("[data-export-text]");
    var link = row.querySelector("[data-export-link]");
    if (bar) { bar.value = s.progress; bar.textContent = s.progress + "%"; }
    if (text) {
      var detail = s.error ? ": " + s.error : (s.step && s.status !== "done" ? ": " + s.step : "");
      text.textContent = s.status_label + detail;
    }
    if (link && s.download_url) {
      link.textContent = "";
      var a = document.createElement("a");
      a.href = s.download_url;
      a.textContent = "Download";
      link.appendChild(a);
    }
  }

  var FIRST_DELAY = 1000, MAX_DELAY = 15000, GIVE_UP_AFTER = 2 * 60 * 60 * 1000;

  function later(row, started, delay) {
    if (Date.now() - started > GIVE_UP_AFTER) {
      var text = row.querySelector("[data-export-text]");
      if (text) { text.textContent += " (reload the page to check again)"; }
      return;
    }
    window.setTimeout(function () { poll(row, started, Math.min(delay * 1.5, MAX_DELAY)); }, delay);
  }

  function poll(row, started, delay) {
    var url = row.getAttribute("data-export-status");
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (s) {
        if (!s) { return; }
        render(row, s);
        if (s.status === "queued" || s.status === "running") { later(row, started, delay); }
      })
      .catch(function () { later(row, started, Math.max(delay, 5000)); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var rows = document.querySelectorAll("[data-export-status]");
    Array.prototype.forEach.call(rows, function (row) {
      var text = row.querySelector("[data-export-text]");
      var label = text ? text.textContent : "";
      if (/^(Queued|Running)/.test(label)) { poll(row, Date.now(), FIRST_DELAY); }
    });
  });
})();
