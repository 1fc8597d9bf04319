/* The city map: markers coloured by the latest value of the chosen quantity, a legend, a table
   of the same data, filters, and live updates from /v1/stream. Data: one request to
   /web/map.json, then the live feed. */
(function () {
  "use strict";
  const UP = window.UP;
  const box = document.getElementById("map");
  const tenant = box.dataset.tenant;
  const quantitySelect = document.getElementById("quantity");
  const districtSelect = document.getElementById("district");
  const status = document.getElementById("live-status");
  const tableBody = document.querySelector("#sensor-table tbody");
  const params = new URLSearchParams(window.location.search);

  const map = L.map(box, { zoomControl: true, keyboard: true, preferCanvas: false });
  if (box.dataset.tileUrl) {
    L.tileLayer(box.dataset.tileUrl, { attribution: box.dataset.tileAttribution, maxZoom: 19 })
      .addTo(map);
  } else {
    box.classList.add("no-tiles");
  }
  const outlines = L.layerGroup().addTo(map);
  const markerLayer = L.layerGroup().addTo(map);
  let doc = null; // the map document
  const markers = new Map(); // sensor id -> Leaflet marker (of the chosen quantity)
  let liveCount = 0;

  function readingOf(sensor) {
    return sensor.readings[quantitySelect.value];
  }

  function visible(sensor) {
    return Boolean(readingOf(sensor)) &&
      (!districtSelect.value || sensor.district === districtSelect.value);
  }

  /** Colour, label and state words of one sensor's reading of the chosen quantity. */
  function describe(sensor) {
    const quantity = quantitySelect.value;
    const reading = readingOf(sensor);
    const band = UP.band(doc.scales, quantity, reading.value);
    const states = [];
    if (reading.stale) states.push(UP.t("state.stale"));
    for (const flag of reading.flags) states.push(UP.t("flag." + flag + ".name"));
    return {
      colour: band ? band.colour : doc.scales.neutral,
      bandLabel: band ? UP.t(band.label) : "–",
      value: UP.formatValue(doc.scales, quantity, reading.value, reading.unit),
      states: states.length ? states.join(", ") : UP.t("state.ok"),
      reading,
    };
  }

  function markerElementUpdate(marker, sensor) {
    const d = describe(sensor);
    const el = marker.getElement();
    if (!el) return;
    el.style.setProperty("--marker", d.colour);
    el.classList.toggle("is-stale", d.reading.stale);
    el.classList.toggle("is-flagged", d.reading.flags.length > 0);
    el.dataset.sensor = sensor.id;
    el.dataset.value = String(d.reading.value);
    const label = UP.t("map.marker_label", {
      sensor: sensor.id, value: d.value, band: d.bandLabel, state: d.states,
    });
    el.setAttribute("aria-label", label);
    el.title = label;
    marker.setPopupContent(popupHtml(sensor, d));
  }

  function popupHtml(sensor, d) {
    const p = document.createElement("div");
    const title = document.createElement("strong");
    title.textContent = sensor.id;
    const line = document.createElement("div");
    line.textContent = UP.quantityName(quantitySelect.value) + ": " + d.value + " (" + d.bandLabel + ")";
    const when = document.createElement("div");
    when.textContent = UP.formatTime(d.reading.time) + " · " + d.states;
    const link = document.createElement("a");
    link.href = "/sensors/" + encodeURIComponent(sensor.id) + "?tenant=" + encodeURIComponent(tenant);
    link.textContent = UP.t("map.open_sensor");
    p.append(title, line, when, link);
    return p;
  }

  function drawMarkers() {
    markerLayer.clearLayers();
    markers.clear();
    for (const sensor of doc.sensors) {
      if (sensor.lat === null || sensor.lon === null || !visible(sensor)) continue;
      const marker = L.marker([sensor.lat, sensor.lon], {
        icon: L.divIcon({ className: "up-marker", iconSize: [18, 18] }),
        keyboard: true,
        riseOnHover: true,
      });
      marker.bindPopup("");
      // The icon exists only once the map shows the marker (after its first view is set).
      marker.on("add", () => markerElementUpdate(marker, sensor));
      marker.addTo(markerLayer);
      markers.set(sensor.id, marker);
    }
  }

  function drawOutlines() {
    outlines.clearLayers();
    for (const district of doc.districts) {
      if (!district.outline.length) continue;
      if (districtSelect.value && district.id !== districtSelect.value) continue;
      L.polygon(district.outline, { className: "district", interactive: false })
        .bindTooltip(district.id, { permanent: true, direction: "center", className: "district-label" })
        .addTo(outlines);
    }
  }

  function drawLegend() {
    const body = document.getElementById("legend-body");
    body.replaceChildren();
    const quantity = quantitySelect.value;
    const how = UP.shown(doc.scales, quantity);
    const head = document.createElement("p");
    head.textContent = UP.quantityName(quantity) + (how.unit ? " (" + how.unit + ")" : "");
    body.append(head);
    if (!how.scale) {
      const none = document.createElement("p");
      none.textContent = UP.t("map.no_scale");
      body.append(none);
      return;
    }
    const list = document.createElement("ul");
    let lower = null;
    for (const b of how.scale.bands) {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.setAttribute("aria-hidden", "true");
      swatch.style.setProperty("--swatch", b.colour);
      const range = lower === null ? "< " + b.upper : b.upper === null ? "≥ " + lower : lower + "–" + b.upper;
      item.append(swatch, " " + UP.t(b.label) + " (" + range + ")");
      list.append(item);
      lower = b.upper;
    }
    const source = document.createElement("p");
    source.className = "source";
    source.textContent = UP.t("map.scale_source") + ": " + how.scale.source;
    body.append(list, source);
  }

  function rowFor(sensor) {
    const d = describe(sensor);
    const row = document.createElement("tr");
    row.dataset.sensor = sensor.id;
    const name = document.createElement("th");
    name.scope = "row";
    const link = document.createElement("a");
    link.href = "/sensors/" + encodeURIComponent(sensor.id) + "?tenant=" + encodeURIComponent(tenant);
    link.textContent = sensor.id;
    name.append(link);
    const cells = [sensor.district || "–", d.value, d.bandLabel, UP.formatTime(d.reading.time), d.states]
      .map((text, i) => {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (i === 1) { cell.className = "num value"; cell.dataset.value = String(d.reading.value); }
        return cell;
      });
    row.append(name, ...cells);
    if (d.reading.stale || d.reading.flags.length) row.className = "marked";
    return row;
  }

  function drawTable() {
    const rows = doc.sensors.filter(visible).sort((a, b) => a.id.localeCompare(b.id)).map(rowFor);
    tableBody.replaceChildren(...rows);
    document.getElementById("table-caption").textContent = UP.t("map.table_caption", {
      quantity: UP.quantityName(quantitySelect.value), count: rows.length,
    });
    document.getElementById("table-summary").textContent = UP.t("map.summary", {
      count: rows.length,
      stale: doc.sensors.filter((s) => visible(s) && readingOf(s).stale).length,
      flagged: doc.sensors.filter((s) => visible(s) && readingOf(s).flags.length).length,
    });
  }

  function redraw(fit) {
    const placed = doc.sensors.filter((s) => s.lat !== null && visible(s)).map((s) => [s.lat, s.lon]);
    if (fit && placed.length) map.fitBounds(placed, { padding: [30, 30], maxZoom: 16 });
    if (!placed.length) map.setView([0, 0], 2);
    drawOutlines();
    drawMarkers();
    drawLegend();
    drawTable();
    const url = new URL(window.location.href);
    url.searchParams.set("quantity", quantitySelect.value);
    if (districtSelect.value) url.searchParams.set("district", districtSelect.value);
    else url.searchParams.delete("district");
    window.history.replaceState(null, "", url);
  }

  function fillSelects() {
    quantitySelect.replaceChildren(...doc.quantities.map((q) => new Option(UP.quantityName(q), q)));
    const wanted = params.get("quantity");
    if (wanted && doc.quantities.includes(wanted)) quantitySelect.value = wanted;
    const districts = [...new Set(doc.sensors.map((s) => s.district).filter(Boolean))].sort();
    for (const d of districts) districtSelect.append(new Option(d, d));
    const district = params.get("district");
    if (district && districts.includes(district)) districtSelect.value = district;
  }

  /** One reading from the live feed: update the document, its marker and its table row. */
  function apply(obs) {
    let sensor = doc.sensors.find((s) => s.id === obs.sensor_id);
    if (!sensor) {
      sensor = { id: obs.sensor_id, district: null, domain: "other", lat: obs.lat, lon: obs.lon, readings: {} };
      doc.sensors.push(sensor);
    }
    const known = sensor.readings[obs.quantity];
    if (known && known.time && new Date(known.time) > new Date(obs.time)) return; // older
    sensor.readings[obs.quantity] = {
      value: obs.value, unit: obs.unit, time: obs.time, flags: obs.quality_flags, stale: false,
    };
    if (obs.lat !== null && obs.lon !== null) { sensor.lat = obs.lat; sensor.lon = obs.lon; }
    if (!doc.quantities.includes(obs.quantity)) {
      doc.quantities.push(obs.quantity);
      quantitySelect.append(new Option(UP.quantityName(obs.quantity), obs.quantity));
    }
    if (obs.quantity !== quantitySelect.value || !visible(sensor)) return;
    const marker = markers.get(sensor.id);
    if (marker) {
      markerElementUpdate(marker, sensor);
      const el = marker.getElement();
      if (el) { el.classList.remove("is-new"); void el.offsetWidth; el.classList.add("is-new"); }
    } else {
      drawMarkers();
    }
    const row = tableBody.querySelector('tr[data-sensor="' + CSS.escape(sensor.id) + '"]');
    if (row) row.replaceWith(rowFor(sensor)); else drawTable();
  }

  function connect() {
    const source = new EventSource("/v1/stream?tenant=" + encodeURIComponent(tenant));
    source.addEventListener("open", () => {
      status.textContent = UP.t("map.live", { count: liveCount });
      status.dataset.live = "open";
    });
    source.addEventListener("reading", (event) => {
      liveCount += 1;
      apply(JSON.parse(event.data));
      status.textContent = UP.t("map.live", { count: liveCount });
    });
    source.addEventListener("error", () => {
      status.dataset.live = "reconnecting";
      status.textContent = UP.t("map.reconnecting");
    });
  }

  async function start() {
    try {
      doc = await UP.getJson("/web/map.json?tenant=" + encodeURIComponent(tenant));
    } catch (err) {
      status.textContent = UP.t("map.failed", { error: err.message });
      return;
    }
    if (!doc.sensors.length) {
      status.textContent = UP.t("map.no_sensors");
      map.setView([0, 0], 2);
      return;
    }
    fillSelects();
    redraw(true);
    quantitySelect.addEventListener("change", () => redraw(false));
    districtSelect.addEventListener("change", () => redraw(true));
    document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
    box.dataset.ready = "true";
    connect();
  }

  start();
})();
