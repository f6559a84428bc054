// The results page's export list: rows of queued or running exports poll their status
// endpoint every second and update the <progress> bar, the step and the download link.
// Without JavaScript the page still lists the latest exports; reloading shows progress.
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

  function poll(row) {
    var url = row.getAttribute("data-export-status");
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (s) {
        if (!s) { return; }
        render(row, s);
        if (s.status === "queued" || s.status === "running") {
          window.setTimeout(function () { poll(row); }, 1000);
        }
      })
      .catch(function () { window.setTimeout(function () { poll(row); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var rows = document.querySelectorAll("[data-export-status]");
    Array.prototype.forEach.call(rows, function (row) {
      var text = row.querySelector("[data-export-text]");
      var label = text ? text.textContent : "";
      if (/^(Queued|Running)/.test(label)) { poll(row); }
    });
  });
})();
