// An instrument, live: the depth ladder and the tape follow the market stream
// (/v1/ws/market/{symbol}); candles come from /bars; renders are coalesced (dx.coalesce).
"use strict";

(() => {
  const root = document.getElementById("instrument");
  if (!root) return;
  const symbol = root.dataset.symbol;
  const path = encodeURIComponent(symbol);
  const LEVELS = Number(root.dataset.levels);
  const TAPE_ROWS = Number(root.dataset.tapeRows);
  // Deeper than shown, so that a level emptied at the top lets the next one show at once.
  const SNAPSHOT_DEPTH = 50;
  const RETRY_MAX_MS = 10000;
  const INTERVALS = ["1m", "5m", "15m", "1h", "1d"];

  const bids = new Map(); // price (decimal string) -> units
  const asks = new Map();
  let tape = [];
  let buffered = null; // stream messages that arrive while the snapshot is on its way
  let current = null; // the socket the book follows
  let retryMs = 1000;
  const render = dx.coalesce(draw);

  function applyLevels(levels) {
    for (const [side, price, units] of levels) {
      const book = side === "buy" ? bids : asks;
      if (units === 0) book.delete(price);
      else book.set(price, units);
    }
  }

  function sorted(book, descending) {
    const prices = [...book.keys()].sort((a, b) => parseFloat(a) - parseFloat(b));
    if (descending) prices.reverse();
    return prices.slice(0, LEVELS).map((price) => [price, book.get(price)]);
  }

  function draw() {
    const shownAsks = sorted(asks, false).reverse();
    const shownBids = sorted(bids, true);
    const widest = Math.max(1, ...shownAsks.map((l) => l[1]), ...shownBids.map((l) => l[1]));
    const bar = (units) => `--w:${Math.round((100 * units) / widest)}%`;
    dx.rows(document.getElementById("book-asks"), shownAsks, ([price, units]) =>
      dx.el("tr", { class: "ask" }, dx.el("td"), dx.el("td", { class: "num" }, price),
        dx.el("td", { class: "num depth", style: bar(units) }, units)));
    dx.rows(document.getElementById("book-bids"), shownBids, ([price, units]) =>
      dx.el("tr", { class: "bid" }, dx.el("td", { class: "num depth", style: bar(units) }, units),
        dx.el("td", { class: "num" }, price), dx.el("td")));
    const empty = document.getElementById("book-empty");
    if (empty) empty.hidden = shownAsks.length + shownBids.length > 0;
    dx.rows(document.querySelector("#tape tbody"), tape, (t) =>
      dx.el("tr", {}, dx.el("td", {}, dx.time(t.time)), dx.el("td", { class: "num" }, t.price),
        dx.el("td", { class: "num" }, t.quantity), dx.el("td", {}, t.aggressor || "auction")),
      "No trades yet.");
  }

  function onTrade(t) {
    if (tape.length && tape[0].trade_id >= t.trade_id) return;
    tape.unshift(t);
    tape = tape.slice(0, TAPE_ROWS);
    dx.setText("last", t.price);
    if (root.dataset.mode === "sealed_bid") dx.setText("auction-result", `${t.quantity} at ${t.price}`);
    refreshTicker();
    refreshBars();
  }

  function replaceBook(book) {
    bids.clear();
    asks.clear();
    for (const level of book.bids) bids.set(level.price, level.quantity);
    for (const level of book.asks) asks.set(level.price, level.quantity);
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      // The stream's own, after a resync (docs/exchange.md, "Keeping a book in sync").
      replaceBook(message);
      dx.setText("phase", message.phase);
    } else if (message.type === "book") {
      applyLevels(message.levels);
      if (root.dataset.mode === "call_auction") refreshIndicative();
    } else if (message.type === "trade") {
      onTrade(message);
    } else if (message.type === "auction") {
      dx.setText("auction-result", message.price === null
        ? "no cross" : `${message.volume} at ${message.price}`);
      refreshIndicative();
    } else if (message.type === "phase") {
      dx.setText("phase", message.phase);
      if (root.dataset.mode === "call_auction") refreshIndicative();
      if (root.dataset.mode === "sealed_bid") sealedStatus(message.phase);
    }
    render();
  }

  async function snapshot(socket) {
    const [book, trades] = await Promise.all([
      dx.api(`/v1/market/${path}/book?depth=${SNAPSHOT_DEPTH}`),
      dx.api(`/v1/market/${path}/trades?limit=${TAPE_ROWS}`),
    ]);
    // A snapshot of a socket that has since closed belongs to no stream: the next one's does.
    if (socket !== current) return;
    replaceBook(book);
    tape = trades;
    showIndicative(book);
    dx.setText("phase", book.phase);
    // What came meanwhile up to the snapshot's seq is in it already (the stream's own first
    // snapshot too); the rest applies on top, in order.
    const meanwhile = (buffered || []).filter((message) => message.seq > book.seq);
    buffered = null;
    for (const message of meanwhile) onMessage(message);
    render();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/ws/market/${path}`);
    current = socket;
    buffered = [];
    socket.addEventListener("open", () => {
      retryMs = 1000;
      dx.setText("stream-status", "live");
      snapshot(socket).catch((error) => dx.setText("stream-status", `snapshot failed: ${error.message}`));
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (buffered !== null) buffered.push(message);
      else onMessage(message);
    });
    socket.addEventListener("close", () => {
      dx.setText("stream-status", "reconnecting…");
      setTimeout(connect, retryMs);
      retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
    });
  }

  function sealedStatus(phase) {
    dx.setText("sealed-round", phase === "auction" || phase === "pre_open"
      ? "Bids are sealed: the book shows nothing until the round closes."
      : `The round is ${phase.replaceAll("_", " ")}.`);
  }

  function showIndicative(book) {
    dx.setText("indicative-price", book.indicative_price ?? "—");
    dx.setText("indicative-volume", book.indicative_volume);
  }

  const refreshIndicative = dx.coalesce(async () => {
    try {
      showIndicative(await dx.api(`/v1/market/${path}/book?depth=1`));
    } catch (error) {
      console.warn("indicative", error.message);
    }
  }, 1000);

  const refreshTicker = dx.coalesce(async () => {
    try {
      const t = await dx.api(`/v1/market/${path}/ticker`);
      dx.setText("vwap", t.vwap ?? "—");
      dx.setText("volume", t.volume);
    } catch (error) {
      console.warn("ticker", error.message);
    }
  }, 2000);

  // -- candles ------------------------------------------------------------------------
  let candles = null;
  let volumes = null;
  let timeScale = null;
  const intervalSelect = document.getElementById("interval");

  function makeChart() {
    const box = document.getElementById("candles");
    if (!window.LightweightCharts) {
      dx.setText("chart-note", "The chart library did not load.");
      return;
    }
    const L = window.LightweightCharts;
    const chart = L.createChart(box, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: "#1f2933" },
      grid: { vertLines: { color: "#eef1f4" }, horzLines: { color: "#eef1f4" } },
      // A few bars should look like candles, not slabs across the chart.
      timeScale: { timeVisible: true, secondsVisible: false, maxBarSpacing: 24 },
      rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.3 } },
    });
    candles = chart.addSeries(L.CandlestickSeries, {
      upColor: "#0b7a3b", downColor: "#b42318", borderVisible: false,
      wickUpColor: "#0b7a3b", wickDownColor: "#b42318",
    });
    volumes = chart.addSeries(L.HistogramSeries, {
      priceScaleId: "volume", priceFormat: { type: "volume" }, color: "#8aa4bf",
      lastValueVisible: false, priceLineVisible: false,
    });
    timeScale = chart.timeScale();
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
  }

  async function loadBars() {
    if (!candles) return;
    let index = INTERVALS.indexOf(intervalSelect.value);
    for (; index < INTERVALS.length; index += 1) {
      try {
        const bars = await dx.api(`/v1/instruments/${path}/bars?interval=${INTERVALS[index]}`);
        const at = (bar) => Math.floor(Date.parse(bar.start) / 1000);
        candles.setData(bars.map((b) => ({
          time: at(b), open: +b.open, high: +b.high, low: +b.low, close: +b.close,
        })));
        volumes.setData(bars.map((b) => ({
          time: at(b), value: b.volume, color: +b.close >= +b.open ? "#9fd3b3" : "#f1b0aa",
        })));
        timeScale.fitContent();
        document.getElementById("candles").hidden = !bars.length;
        dx.setText("chart-note", bars.length
          ? `${bars.length} bar${bars.length === 1 ? "" : "s"} of ${INTERVALS[index]}`
          : "No trades yet.");
        return;
      } catch (error) {
        // Too many bars for this interval: try the next, longer one.
        if (error.status !== 422) {
          dx.setText("chart-note", `Bars unavailable: ${error.message}`);
          return;
        }
      }
    }
  }
  const refreshBars = dx.coalesce(loadBars, 2000);

  intervalSelect.addEventListener("change", loadBars);
  makeChart();
  loadBars();
  connect();
})();
