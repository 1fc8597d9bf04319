/* Shared by the pages: strings of the page's language, number and time formats, colours.
   Plain script, no build step; everything hangs off window.UP. */
(function () {
  "use strict";
  const strings = JSON.parse(document.getElementById("up-strings").textContent);
  const lang = document.documentElement.lang || "en";

  /** The text of a key, with {name} placeholders filled. */
  function t(key, values) {
    let text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  /** A quantity's name in the page's language (its snake_case name if there is none). */
  function quantityName(quantity) {
    const key = "quantity." + quantity;
    return Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : quantity;
  }

  /** How a quantity is shown: domain, unit label, decimals, scale (from the server's table). */
  function shown(scales, quantity) {
    return scales.quantities[quantity] || { domain: "other", unit: "", decimals: 1, scale: null };
  }

  /** The band of a value on a quantity's scale, or null without a scale. */
  function band(scales, quantity, value) {
    const scale = shown(scales, quantity).scale;
    if (!scale || value === null || value === undefined) return null;
    for (const b of scale.bands) {
      if (b.upper === null || value < b.upper) return b;
    }
    return scale.bands[scale.bands.length - 1];
  }

  /** A value with its unit, in the page's language. */
  function formatValue(scales, quantity, value, unit) {
    if (value === null || value === undefined) return "–";
    const how = shown(scales, quantity);
    const number = new Intl.NumberFormat(lang, {
      minimumFractionDigits: how.decimals,
      maximumFractionDigits: how.decimals,
    }).format(value);
    const label = how.unit || (unit && unit !== "1" && unit !== "{count}" ? unit : "");
    return label ? number + " " + label : number;
  }

  const timeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "short", timeStyle: "short" });

  /** A time stamp in the visitor's time zone. */
  function formatTime(iso) {
    return iso ? timeFormat.format(new Date(iso)) : "–";
  }

  /** GET a JSON document; rejects with the problem's detail on an error status. */
  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(response.status + ": " + detail);
    }
    return response.json();
  }

  /** Black or white text, whichever reads better on a background colour (WCAG luminance). */
  function textOn(hex) {
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)));
    const luminance = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    return luminance > 0.179 ? "#000000" : "#ffffff";
  }

  window.UP = { t, lang, quantityName, shown, band, formatValue, formatTime, getJson, textOn };
})();
