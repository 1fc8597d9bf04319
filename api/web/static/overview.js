/* The staff overview's dead letters: counted by /v1/deadletters (read from Kafka), asked for
   by the page so the rest of the overview never waits for Kafka. */
(function () {
  "use strict";
  const UP = window.UP;
  const section = document.getElementById("deadletters");
  const status = document.getElementById("letters-status");
  const table = document.getElementById("letters-table");

  async function load() {
    const q = new URLSearchParams({ tenant: section.dataset.tenant, hours: section.dataset.hours });
    let summary;
    try {
      summary = await UP.getJson("/v1/deadletters?" + q.toString());
    } catch (err) {
      status.textContent = UP.t("overview.deadletters_failed", { error: err.message });
      return;
    }
    status.textContent = UP.t(summary.truncated ? "overview.deadletters_truncated" : "overview.deadletters_total",
      { count: summary.total });
    section.dataset.ready = "true";
    if (!summary.counts.length) return;
    table.tBodies[0].replaceChildren(...summary.counts.map((c) => {
      const tr = document.createElement("tr");
      for (const [text, num] of [[c.stage, false], [c.reason, false],
        [c.domain ? UP.t("domain." + c.domain) : "–", false], [String(c.count), true]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (num) td.className = "num";
        tr.append(td);
      }
      return tr;
    }));
    table.hidden = false;
  }

  load();
})();
