/* A sensor's page: the last 24 h of raw readings and 7 days of hourly aggregates of the chosen
   quantity as charts (uPlot), and the hourly values as a table. Data from the open-data API. */
(function () {
  "use strict";
  const UP = window.UP;
  const section = document.getElementById("charts");
  const select = document.getElementById("chart-quantity");
  const status = document.getElementById("chart-status");
  const { sensor, tenant, dayFrom, weekFrom, to } = section.dataset;
  const base = "/v1/sensors/" + encodeURIComponent(sensor);
  const MAX_PAGES = 20;
  let charts = [];

  /** Every row of a paged answer (follows links.next). */
  async function allRows(url) {
    const rows = [];
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const body = await UP.getJson(url);
      rows.push(...body.data);
      url = body.links && body.links.next ? body.links.next : null;
    }
    return rows;
  }

  function query(values) {
    return new URLSearchParams(Object.assign({ tenant, format: "json" }, values)).toString();
  }

  function width(el) {
    return Math.max(280, el.clientWidth || 600);
  }

  function seconds(iso) {
    return new Date(iso).getTime() / 1000;
  }

  function chart(el, series, data, unit) {
    const plot = new uPlot({
      width: width(el),
      height: 260,
      series: [{}].concat(series),
      axes: [{}, { label: unit, size: 60 }],
      scales: { x: { time: true } },
      legend: { live: false },
    }, data, el);
    charts.push(plot);
    return plot;
  }

  function fillTable(rows, quantity) {
    const body = document.querySelector("#week-table tbody");
    const cell = (text, num) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (num) td.className = "num";
      return td;
    };
    const decimals = Number(select.selectedOptions[0].dataset.decimals || 1);
    const number = new Intl.NumberFormat(UP.lang, {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals,
    });
    const format = (v) => (v === null || v === undefined ? "–" : number.format(v));
    body.replaceChildren(...rows.slice().reverse().map((r) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = UP.formatTime(r.window_start);
      tr.append(th, cell(format(r.mean), true), cell(format(r.min), true), cell(format(r.max), true),
        cell(String(r.count), true));
      return tr;
    }));
  }

  async function draw() {
    const quantity = select.value;
    for (const c of charts) c.destroy();
    charts = [];
    status.textContent = UP.t("map.loading");
    try {
      const [raw, hourly] = await Promise.all([
        allRows(base + "/observations?" + query({ quantity, from: dayFrom, to, limit: "5000" })),
        allRows(base + "/aggregates?" + query({ quantity, window: "1h", from: weekFrom, to, limit: "1000" })),
      ]);
      const unit = raw.length ? raw[raw.length - 1].unit : (hourly.length ? hourly[0].unit : "");
      const name = UP.quantityName(quantity);
      const dayEl = document.getElementById("chart-day");
      const weekEl = document.getElementById("chart-week");
      dayEl.replaceChildren();
      weekEl.replaceChildren();
      chart(dayEl, [{ label: name, stroke: "#1f5fa8", width: 2 }],
        [raw.map((r) => seconds(r.time)), raw.map((r) => r.value)], unit);
      chart(weekEl, [
        { label: UP.t("table.mean"), stroke: "#1f5fa8", width: 2 },
        { label: UP.t("table.min"), stroke: "#7a8a9e", dash: [4, 4] },
        { label: UP.t("table.max"), stroke: "#b03a2e", dash: [4, 4] },
      ], [
        hourly.map((r) => seconds(r.window_start)),
        hourly.map((r) => r.mean), hourly.map((r) => r.min), hourly.map((r) => r.max),
      ], unit);
      dayEl.setAttribute("aria-label", UP.t("sensor.day_chart_label", { quantity: name, count: raw.length }));
      weekEl.setAttribute("aria-label", UP.t("sensor.week_chart_label", { quantity: name, count: hourly.length }));
      fillTable(hourly, quantity);
      status.textContent = UP.t("sensor.chart_status", { raw: raw.length, hourly: hourly.length });
      section.dataset.ready = "true";
    } catch (err) {
      status.textContent = UP.t("map.failed", { error: err.message });
    }
  }

  select.addEventListener("change", draw);
  draw();
})();
