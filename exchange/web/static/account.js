// My account: balances, holds, open orders (with cancel), fills and an order ticket, all
// with the key kept in this tab's session storage; the private stream refreshes them.
"use strict";

(() => {
  const panel = document.getElementById("account");
  if (!panel) return;
  const ticketStatus = document.getElementById("ticket-status");
  let socket = null;
  let clientOrderSeq = 0;

  const chosen = new URLSearchParams(location.search).get("symbol");
  if (chosen) document.getElementById("t-symbol").value = chosen;

  async function balances() {
    const b = await dx.api("/v1/balances", { auth: true });
    dx.setText("cash-available", b.cash_available);
    dx.setText("cash-reserved", b.cash_reserved);
    dx.rows(document.querySelector("#holdings tbody"), b.holdings, (h) =>
      dx.el("tr", {}, dx.el("td", {}, h.symbol), dx.el("td", { class: "num" }, h.units),
        dx.el("td", { class: "num" }, h.reserved_units), dx.el("td", {}, (h.expires_at || "").slice(0, 10))),
      "No licences held.");
  }

  async function orders() {
    const open = await dx.api("/v1/orders?status=open&limit=500", { auth: true });
    dx.rows(document.querySelector("#orders tbody"), open.reverse(), (o) =>
      dx.el("tr", { "data-order": o.order_id }, dx.el("td", { class: "num" }, o.order_id),
        dx.el("td", {}, o.symbol), dx.el("td", {}, o.side), dx.el("td", { class: "num" }, o.price ?? "market"),
        dx.el("td", { class: "num" }, o.quantity), dx.el("td", { class: "num" }, o.filled_quantity),
        dx.el("td", {}, o.status),
        dx.el("td", {}, dx.el("button", {
          type: "button", class: "secondary", "aria-label": `Cancel order ${o.order_id}`,
          onclick: () => cancel(o.order_id),
        }, "Cancel"))),
      "No open orders.");
  }

  async function fills() {
    // Fills come oldest first, a page at a time: walk to the newest (a bounded walk).
    const PAGE = 500;
    let latest = [];
    let after = 0;
    for (let page = 0; page < 20; page += 1) {
      const batch = await dx.api(`/v1/fills?after=${after}&limit=${PAGE}`, { auth: true });
      latest = latest.concat(batch).slice(-50);
      if (batch.length < PAGE) break;
      after = batch[batch.length - 1].trade_id;
    }
    dx.rows(document.querySelector("#fills tbody"), latest.reverse(), (f) =>
      dx.el("tr", {}, dx.el("td", {}, dx.time(f.time)), dx.el("td", {}, f.symbol), dx.el("td", {}, f.side),
        dx.el("td", { class: "num" }, f.price), dx.el("td", { class: "num" }, f.quantity),
        dx.el("td", { class: "num" }, f.fee), dx.el("td", {}, f.liquidity)),
      "No fills yet.");
  }

  async function refreshAll() {
    try {
      await Promise.all([balances(), orders(), fills()]);
    } catch (error) {
      ticketStatus.textContent = `Could not read the account: ${error.message}`;
    }
  }
  const refresh = dx.coalesce(refreshAll, 500);

  async function cancel(orderId) {
    try {
      const order = await dx.api(`/v1/orders/${orderId}`, { method: "DELETE", auth: true });
      ticketStatus.textContent = `Order ${order.order_id} ${order.status}.`;
    } catch (error) {
      ticketStatus.textContent = `Order ${orderId} not cancelled: ${error.message}`;
    }
    refresh();
  }

  document.getElementById("ticket").addEventListener("submit", async (event) => {
    event.preventDefault();
    clientOrderSeq += 1;
    const body = {
      client_order_id: `web-${Date.now().toString(36)}-${clientOrderSeq}`,
      symbol: document.getElementById("t-symbol").value,
      side: document.querySelector('input[name="side"]:checked').value,
      type: "limit",
      price: document.getElementById("t-price").value.trim(),
      quantity: Number(document.getElementById("t-quantity").value),
      time_in_force: document.getElementById("t-tif").value,
    };
    try {
      const order = await dx.api("/v1/orders", { method: "POST", auth: true, body });
      ticketStatus.textContent =
        `Order ${order.order_id}: ${order.status}, ${order.filled_quantity} of ${order.quantity} filled.`;
    } catch (error) {
      ticketStatus.textContent = `Order refused: ${error.message}`;
    }
    refresh();
  });

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
      if (message.type === "auth") dx.setText("who", `Signed in as ${message.participant_id}.`);
      refresh();
    });
    socket = ws;
  }

  dx.keyForm(() => {
    panel.hidden = !dx.key();
    if (dx.key()) refreshAll();
    listen();
  });
})();
