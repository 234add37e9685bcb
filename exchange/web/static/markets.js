// Markets: refresh each row's phase, last price, change and volume every few seconds.
"use strict";

(() => {
  const REFRESH_MS = 3000;
  const table = document.getElementById("markets");
  if (!table) return;

  function change(last, open) {
    if (last === null || open === null) return ["—", "flat"];
    // Cents as integers: the API's decimal strings carry exactly two places.
    const cents = Math.round(parseFloat(last) * 100) - Math.round(parseFloat(open) * 100);
    const text = (cents > 0 ? "+" : cents < 0 ? "-" : "") +
      (Math.abs(cents) / 100).toFixed(2);
    return [text, cents > 0 ? "up" : cents < 0 ? "down" : "flat"];
  }

  async function refresh() {
    for (const row of table.querySelectorAll("tbody tr[data-symbol]")) {
      try {
        const t = await dx.api(`/v1/market/${encodeURIComponent(row.dataset.symbol)}/ticker`);
        const [text, direction] = change(t.last, t.open);
        row.querySelector('[data-field="phase"]').textContent = t.phase;
        row.querySelector('[data-field="last"]').textContent = t.last ?? "—";
        const cell = row.querySelector('[data-field="change"]');
        cell.textContent = text;
        cell.className = `num ${direction}`;
        row.querySelector('[data-field="volume"]').textContent = t.volume;
      } catch (error) {
        console.warn("ticker", row.dataset.symbol, error.message);
      }
    }
  }

  // The next pass starts a while after the last one ends: many instruments never pile up
  // requests.
  async function loop() {
    await refresh();
    setTimeout(loop, REFRESH_MS);
  }
  setTimeout(loop, REFRESH_MS);
})();
