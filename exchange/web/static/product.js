// A product: its valuation report (fetched with the person's key) and its category's
// price index as a chart.
"use strict";

(() => {
  const root = document.getElementById("product");
  if (!root) return;
  const productId = root.dataset.product;
  const category = root.dataset.category;
  const form = document.getElementById("valuation-form");
  const status = document.getElementById("valuation-status");

  const money = (x) => (x === null || x === undefined ? "—" : Number(x).toFixed(2));
  const share = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(0)}%`);
  const label = (text) => String(text).replaceAll("_", " ");

  function terms() {
    return {
      exclusivity: document.getElementById("v-exclusivity").value,
      duration_months: Number(document.getElementById("v-duration").value),
      scope: document.getElementById("v-scope").value,
      territory: document.getElementById("v-territory").value,
    };
  }

  function show(report) {
    const r = report.reconciliation;
    dx.setText("v-value", money(report.value));
    dx.setText("v-range", `${money(report.low)} to ${money(report.high)}`);
    dx.setText("v-method", label(report.method));
    dx.setText("v-count", `${report.n_comparables} of ${report.candidates} candidates`);
    const approaches = [
      ["market", report.market_value, report.market_low, report.market_high],
      ["cost", report.cost_approach.value, report.cost_approach.low, report.cost_approach.high],
    ];
    if (report.income_approach) approaches.push(["income", report.income_approach.value, null, null]);
    dx.rows(document.querySelector("#v-approaches tbody"), approaches, ([name, value, low, high]) =>
      dx.el("tr", {}, dx.el("th", { scope: "row" }, name), dx.el("td", { class: "num" }, money(value)),
        dx.el("td", { class: "num" }, money(low)), dx.el("td", { class: "num" }, money(high)),
        dx.el("td", { class: "num" }, share(r.weights[name] ?? 0))));
    document.querySelector("#v-approaches tbody").append(dx.el("tr", { class: "total" },
      dx.el("th", { scope: "row" }, "concluded"), dx.el("td", { class: "num" }, money(report.value)),
      dx.el("td", { class: "num" }, money(report.low)), dx.el("td", { class: "num" }, money(report.high)),
      dx.el("td", { class: "num" }, "100%")));
    dx.rows(document.querySelector("#v-comparables tbody"), report.comparables, (c) => {
      const factors = Object.entries(c.factors)
        .map(([name, f]) => `${label(name)} ${Number(f).toFixed(3)}`).join(", ");
      const t = c.terms;
      return dx.el("tr", {}, dx.el("td", {}, c.rank), dx.el("td", {}, c.product_id + (c.own ? " (own)" : "")),
        dx.el("td", {}, `${label(t.exclusivity)} ${t.duration_months}m ${t.scope} ${label(t.territory)}`),
        dx.el("td", { class: "num" }, money(c.price)), dx.el("td", { class: "factors" }, factors),
        dx.el("td", { class: "num" }, money(c.adjusted_price)), dx.el("td", { class: "num" }, share(c.weight)));
    }, "Too few comparables traded: the market approach was not applied.");
    const reasoning = [...r.explanation, ...report.flags.map((f) => `Flag: ${f}`)];
    dx.rows(document.getElementById("v-reasoning"), reasoning, (text) => dx.el("li", {}, text));
    const notes = [
      ...report.parameters.map((p) => `${label(p.name)} = ${Number(p.value).toFixed(3)} (${p.source})`),
      ...report.notes,
    ];
    dx.rows(document.getElementById("v-notes"), notes, (text) => dx.el("li", {}, text));
    document.getElementById("valuation").hidden = false;
  }

  async function valuate() {
    if (!dx.key()) {
      status.textContent = "Enter an API key above to value this product.";
      return;
    }
    status.textContent = "Valuing…";
    try {
      show(await dx.api("/v1/valuations", {
        method: "POST", auth: true, body: { product_id: productId, terms: terms() },
      }));
      status.textContent = `Valued as of ${new Date().toISOString().slice(0, 10)}.`;
    } catch (error) {
      status.textContent = `No valuation: ${error.message}`;
    }
  }

  async function index() {
    const note = document.getElementById("index-note");
    let points;
    try {
      points = await dx.api(`/v1/indices/${encodeURIComponent(category)}`);
    } catch (error) {
      note.textContent = `No index: ${error.message}`;
      return;
    }
    if (!points.length) {
      note.textContent = "Not enough trades in this category for an index yet.";
      return;
    }
    note.textContent = `${points.length} period${points.length === 1 ? "" : "s"}; first period = 100.`;
    if (!window.LightweightCharts) return;
    const L = window.LightweightCharts;
    const chart = L.createChart(document.getElementById("index-chart"), {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: "#1f2933" },
      grid: { vertLines: { color: "#eef1f4" }, horzLines: { color: "#eef1f4" } },
    });
    const line = chart.addSeries(L.LineSeries, {
      color: "#1d4ed8", lineWidth: 2, pointMarkersVisible: true,
    });
    line.setData(points.map((p) => ({ time: p.period_start, value: p.value })));
    chart.timeScale().fitContent();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    valuate();
  });
  dx.keyForm(valuate);
  index();
})();
