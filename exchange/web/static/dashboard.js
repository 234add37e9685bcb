// The dashboard's shared helpers: the API key (session storage only), requests to /v1,
// coalesced rendering and small DOM builders. Plain script, no build step.
"use strict";

const dx = (() => {
  const KEY_ITEM = "dataex.apiKey";
  // At most ten renders a second, however fast the stream: a browser kept busy repainting
  // a book that changed fifty times in a second shows nothing more to a person.
  const FRAME_MS = 100;

  function key() {
    return sessionStorage.getItem(KEY_ITEM);
  }

  async function api(path, { method = "GET", body, auth = false } = {}) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) {
      const k = key();
      if (!k) throw new Error("enter your API key first");
      headers["X-API-Key"] = k;
    }
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const error = new Error((data && data.detail) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // fn runs once for any number of schedule() calls within a frame budget.
  function coalesce(fn, frameMs = FRAME_MS) {
    let pending = false;
    let last = 0;
    return function schedule() {
      if (pending) return;
      pending = true;
      const wait = Math.max(0, last + frameMs - performance.now());
      setTimeout(() => requestAnimationFrame(() => {
        pending = false;
        last = performance.now();
        fn();
      }), wait);
    };
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function rows(tbody, items, render, empty) {
    const fresh = items.map(render);
    if (!fresh.length && empty) {
      const cells = tbody.closest("table").querySelectorAll("thead th").length;
      fresh.push(el("tr", {}, el("td", { colspan: cells, class: "muted" }, empty)));
    }
    tbody.replaceChildren(...fresh);
  }

  function setText(id, text) {
    const node = document.getElementById(id);
    if (node && node.textContent !== String(text)) node.textContent = text;
  }

  // Wire every key form on the page; onKey runs when a key is set (and at load if one is).
  function keyForm(onKey) {
    const form = document.getElementById("key-form");
    if (!form) return;
    const input = document.getElementById("api-key");
    const status = document.getElementById("key-status");
    const show = () => {
      status.textContent = key() ? "A key is set for this tab." : "No key set.";
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) {
        status.textContent = "Enter a key.";
        input.focus();
        return;
      }
      sessionStorage.setItem(KEY_ITEM, value);
      input.value = "";
      show();
      if (onKey) onKey();
    });
    document.getElementById("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_ITEM);
      show();
      if (onKey) onKey();
    });
    show();
    if (key() && onKey) onKey();
  }

  function time(iso) {
    return iso ? iso.slice(11, 19) : "";
  }

  return { api, coalesce, el, key, keyForm, rows, setText, time };
})();
