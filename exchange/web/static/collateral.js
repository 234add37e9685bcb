// Collateral: the loan facilities the key's holder lends or borrows under, one of them in
// detail (pledges, LTV over time against its thresholds, alerts). Alerts arrive live on the
// private stream; the figures are re-read on each alert and every few seconds, since a
// trade or a valuation re-marks a facility without a message to either party.
"use strict";

(() => {
  const panel = document.getElementById("collateral");
  if (!panel) return;
  const status = document.getElementById("collateral-status");
  const REFRESH_MS = 5000;
  // Re-read every few seconds: a page of facilities, not a lender's whole book of them.
  const FACILITIES_SHOWN = 100;
  const MAX_ALERTS_SHOWN = 200;
  let me = null;
  let chosen = null; // the facility shown in detail
  let socket = null;
  let retryMs = 1000;
  let chart = null;
  let ltvLine = null;
  let thresholdLines = [];
  let detailAlerts = [];
  const liveAlerts = new Map(); // alert_id -> alert, those the stream brought since the last read

  const percent = (bp) => (bp === null || bp === undefined ? "—" : `${(bp / 100).toFixed(2)}%`);
  const when = (iso) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : "—");
  const words = (text) => String(text).replaceAll("_", " ");

  // A table read as cards on a phone labels each cell with its column's header.
  function labelCells(table) {
    const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const row of table.tBodies[0].rows) {
      [...row.cells].forEach((cell, i) => {
        if (headers[i] && cell.colSpan === 1) cell.dataset.label = headers[i];
      });
    }
  }

  function ltvClass(f) {
    if (f.ltv_bp === null) return "down";
    if (f.ltv_bp >= f.margin_call_ltv_bp) return "down";
    return "";
  }

  async function facilities() {
    const list = await dx.api(`/v1/facilities?limit=${FACILITIES_SHOWN}`, { auth: true });
    if (chosen === null || !list.some((f) => f.facility_id === chosen)) {
      chosen = list.length ? list[0].facility_id : null;
    }
    const table = document.getElementById("facilities");
    dx.rows(table.tBodies[0], list, (f) => {
      const role = f.lender === me ? "lender" : "borrower";
      return dx.el("tr", { "data-facility": f.facility_id, class: f.facility_id === chosen ? "chosen" : null },
        dx.el("td", { class: "num" }, f.facility_id), dx.el("td", {}, role),
        dx.el("td", {}, role === "lender" ? f.borrower : f.lender),
        dx.el("td", {}, words(f.status)), dx.el("td", { class: "num" }, f.debt),
        dx.el("td", { class: "num" }, f.collateral_value),
        dx.el("td", { class: `num ltv ${ltvClass(f)}` }, percent(f.ltv_bp)),
        dx.el("td", { class: "num" },
          `${percent(f.initial_ltv_bp)} / ${percent(f.margin_call_ltv_bp)} / ${percent(f.liquidation_ltv_bp)}`),
        dx.el("td", {}, dx.el("button", {
          type: "button", class: "secondary", "aria-label": `Show facility ${f.facility_id}`,
          "aria-pressed": f.facility_id === chosen ? "true" : "false",
          onclick: () => { chosen = f.facility_id; liveAlerts.clear(); refreshAll(); },
        }, "Show")));
    }, "No facilities: you neither lend nor borrow under one.");
    labelCells(table);
    return chosen;
  }

  function drawChart(f) {
    const note = document.getElementById("ltv-note");
    // One point a second (a chart's times must rise): the last mark of each second.
    const bySecond = new Map();
    for (const m of f.marks) {
      if (m.time === null || m.ltv_bp === null) continue;
      bySecond.set(Math.floor(Date.parse(m.time) / 1000), m.ltv_bp / 100);
    }
    const points = [...bySecond].map(([time, value]) => ({ time, value }));
    note.textContent = `${f.marks.length} mark${f.marks.length === 1 ? "" : "s"}; thresholds: initial ${percent(f.initial_ltv_bp)}, margin call ${percent(f.margin_call_ltv_bp)}, liquidation ${percent(f.liquidation_ltv_bp)}.`;
    if (!window.LightweightCharts) return;
    const L = window.LightweightCharts;
    if (chart === null) {
      chart = L.createChart(document.getElementById("ltv-chart"), {
        autoSize: true,
        layout: { background: { color: "#ffffff" }, textColor: "#1f2933" },
        grid: { vertLines: { color: "#eef1f4" }, horzLines: { color: "#eef1f4" } },
        timeScale: { timeVisible: true, secondsVisible: false },
        localization: { priceFormatter: (v) => `${v.toFixed(1)}%` },
      });
      ltvLine = chart.addSeries(L.LineSeries, {
        color: "#1d4ed8", lineWidth: 2, lineType: L.LineType.WithSteps, title: "LTV",
      });
    }
    for (const line of thresholdLines) ltvLine.removePriceLine(line);
    thresholdLines = [
      ["initial", f.initial_ltv_bp, "#0b7a3b"],
      ["margin call", f.margin_call_ltv_bp, "#b45309"],
      ["liquidation", f.liquidation_ltv_bp, "#b42318"],
    ].map(([title, bp, color]) => ltvLine.createPriceLine({
      price: bp / 100, color, lineWidth: 1, lineStyle: L.LineStyle.Dashed, axisLabelVisible: true, title,
    }));
    ltvLine.setData(points);
    // Keep the thresholds in view even while the LTV is far below them.
    ltvLine.applyOptions({
      autoscaleInfoProvider: (base) => {
        const range = base() ? base().priceRange : { minValue: 0, maxValue: 0 };
        return { priceRange: { minValue: Math.min(0, range.minValue),
          maxValue: Math.max(f.liquidation_ltv_bp / 100 * 1.1, range.maxValue) } };
      },
    });
    chart.timeScale().fitContent();
  }

  function showAlerts() {
    const byId = new Map(detailAlerts.map((a) => [a.alert_id, a]));
    for (const [id, a] of liveAlerts) if (a.facility_id === chosen) byId.set(id, a);
    const newest = [...byId.values()].sort((a, b) => b.alert_id - a.alert_id).slice(0, MAX_ALERTS_SHOWN);
    const table = document.getElementById("alerts");
    dx.rows(table.tBodies[0], newest, (a) =>
      dx.el("tr", { "data-alert": a.alert_id }, dx.el("td", {}, when(a.time)),
        dx.el("td", {}, words(a.reason)), dx.el("td", { class: "num" }, percent(a.ltv_bp)),
        dx.el("td", {}, a.message)),
      "No alerts.");
    labelCells(table);
  }

  async function detail() {
    const section = document.getElementById("facility");
    if (chosen === null) {
      section.hidden = true;
      return;
    }
    const f = await dx.api(`/v1/facilities/${chosen}`, { auth: true });
    section.hidden = false;
    dx.setText("facility-h", `Facility ${f.facility_id}: ${f.lender} lends to ${f.borrower}`);
    dx.setText("f-status", words(f.status));
    dx.setText("f-ltv", percent(f.ltv_bp));
    dx.setText("f-debt", `${f.debt} (interest ${f.accrued_interest})`);
    dx.setText("f-value", f.collateral_value);
    dx.setText("f-margin", f.margin);
    dx.setText("f-drawn", `${f.drawn} of ${f.limit}`);
    dx.setText("f-rate", `${percent(f.rate_bp)} a year`);
    dx.setText("f-maturity", when(f.maturity));
    dx.setText("f-deadline", when(f.call_deadline || f.auction_ends_at));
    const pledges = document.getElementById("pledges");
    dx.rows(pledges.tBodies[0], f.pledges, (p) =>
      dx.el("tr", {}, dx.el("td", { class: "num" }, p.pledge_id), dx.el("td", {}, p.symbol),
        dx.el("td", { class: "num" }, p.units), dx.el("td", { class: "num" }, p.at_auction_units),
        dx.el("td", {}, p.expires_at ? p.expires_at.slice(0, 10) : "unsold issuance"),
        dx.el("td", { class: "num" }, percent(p.haircut_bp)), dx.el("td", { class: "num" }, p.value)),
      "Nothing pledged.");
    labelCells(pledges);
    detailAlerts = f.alerts;
    for (const id of [...liveAlerts.keys()]) {
      if (f.alerts.some((a) => a.alert_id === id)) liveAlerts.delete(id);
    }
    showAlerts();
    drawChart(f);
  }

  async function refreshAll() {
    try {
      await facilities();
      await detail();
      status.textContent = "";
    } catch (error) {
      status.textContent = `Could not read your facilities: ${error.message}`;
    }
  }
  const refresh = dx.coalesce(refreshAll, 1000);

  function listen() {
    if (socket) socket.close();
    socket = null;
    const key = dx.key();
    if (!key) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/v1/ws/private`);
    // The key goes in the first message: a browser cannot set a WebSocket's headers, and
    // a URL is logged.
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", api_key: key })));
    ws.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "auth") {
        retryMs = 1000;
        dx.setText("stream-status", "live");
      } else if (message.type === "alert") {
        liveAlerts.set(message.alert_id, message);
        if (message.facility_id === chosen) showAlerts();
        refresh();
      }
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      dx.setText("stream-status", "reconnecting");
      setTimeout(() => { if (socket === ws) listen(); }, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
    socket = ws;
  }

  let timer = null;
  dx.keyForm(async () => {
    panel.hidden = !dx.key();
    clearInterval(timer);
    me = null;
    chosen = null;
    liveAlerts.clear();
    if (!dx.key()) {
      if (socket) socket.close();
      socket = null;
      return;
    }
    try {
      me = (await dx.api("/v1/participants/me", { auth: true })).participant_id;
      dx.setText("who", `Signed in as ${me}.`);
    } catch (error) {
      status.textContent = `Could not read the account: ${error.message}`;
      return;
    }
    listen();
    await refreshAll();
    timer = setInterval(refresh, REFRESH_MS);
  });
})();
