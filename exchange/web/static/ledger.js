// The ledger page: fetch an entry's inclusion proof and check it here, against the digest,
// by recomputing the Merkle root (RFC 6962 hashing, RFC 9162 section 2.1.3.2).
"use strict";

(() => {
  const result = document.getElementById("proof-result");
  if (!result) return;
  const proofBox = document.getElementById("proof-json");

  const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

  function unhex(text, what) {
    if (typeof text !== "string" || !/^[0-9a-fA-F]{64}$/.test(text)) {
      throw new Error(`${what} is not 32 bytes of hex`);
    }
    return Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
  }

  async function sha256(prefix, ...parts) {
    const length = 1 + parts.reduce((n, p) => n + p.length, 0);
    const data = new Uint8Array(length);
    data[0] = prefix;
    let at = 1;
    for (const part of parts) {
      data.set(part, at);
      at += part.length;
    }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  }
  const leafHash = (bytes) => sha256(0x00, bytes);
  const nodeHash = (left, right) => sha256(0x01, left, right);

  // Resolves if the proof leads from the leaf to the root, else throws with the reason.
  async function verifyInclusion(leaf, index, size, path, root) {
    if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
      throw new Error(`leaf index ${index} is outside a tree of ${size} entries`);
    }
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of path) {
      if (sn === 0) throw new Error("the proof is longer than the path to the root");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the proof is shorter than the path to the root");
    if (hex(r) !== hex(root)) throw new Error("the proof does not lead to the digest's root hash");
  }

  async function check() {
    if (!window.crypto || !crypto.subtle) {
      throw new Error("this browser offers no SHA-256 here (a page over plain HTTP from " +
        "another host); check the proof with `dataex ledger check-proof` instead");
    }
    let proof;
    try {
      proof = JSON.parse(proofBox.value);
    } catch {
      throw new Error("the proof is not JSON");
    }
    if (!proof || proof.type !== "inclusion" || typeof proof.entry !== "string" || !Array.isArray(proof.hashes)) {
      throw new Error("the proof must be an inclusion proof with its entry and hashes");
    }
    const size = Number(document.getElementById("digest-size").value);
    if (proof.tree_size !== size) {
      throw new Error(`the proof is for ${proof.tree_size} entries, the digest for ${size}`);
    }
    const root = unhex(document.getElementById("digest-root").value.trim(), "the root hash");
    // The entry's own bytes are what is trusted: a stated leaf hash must agree with them.
    const leaf = await leafHash(new TextEncoder().encode(proof.entry));
    if (proof.leaf_hash !== undefined && proof.leaf_hash.toLowerCase() !== hex(leaf)) {
      throw new Error("the stated leaf hash is not the hash of the entry");
    }
    const path = proof.hashes.map((h, i) => unhex(h, `proof element ${i}`));
    await verifyInclusion(leaf, proof.leaf_index, size, path, root);
    return proof;
  }

  function say(ok, text) {
    result.textContent = text;
    result.className = ok ? "ok" : "error";
  }

  document.getElementById("fetch-proof").addEventListener("submit", async (event) => {
    event.preventDefault();
    const seq = document.getElementById("entry-seq").value;
    const size = document.getElementById("digest-size").value;
    try {
      const proof = await dx.api(`/v1/ledger/entries/${seq}/proof?tree_size=${size}`, { auth: true });
      proofBox.value = JSON.stringify(proof, null, 2);
      say(true, `Proof of entry ${proof.seq} fetched; check it.`);
    } catch (error) {
      say(false, `No proof: ${error.message}`);
    }
  });

  document.getElementById("check-proof").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const proof = await check();
      say(true, `Verified: entry ${proof.seq ?? proof.leaf_index + 1} is in the ledger of ${proof.tree_size} entries with this root.`);
    } catch (error) {
      say(false, `Does not verify: ${error.message}`);
    }
  });

  // One's own entries, a page at a time: a row's button fetches that entry's proof.
  const ENTRIES_PAGE = 50;
  document.getElementById("list-entries").addEventListener("submit", async (event) => {
    event.preventDefault();
    const after = document.getElementById("entries-after");
    const status = document.getElementById("entries-status");
    try {
      const page = await dx.api(`/v1/ledger/entries?after=${Number(after.value) || 0}&limit=${ENTRIES_PAGE}`,
        { auth: true });
      dx.rows(document.querySelector("#entries tbody"), page.entries, (e) =>
        dx.el("tr", { "data-entry": e.seq }, dx.el("td", { class: "num", "data-label": "Entry" }, e.seq),
          dx.el("td", { "data-label": "Kind" }, e.kind.replaceAll("_", " ")),
          dx.el("td", { "data-label": "Time" }, e.time ? `${e.time.slice(0, 10)} ${e.time.slice(11, 19)}` : ""),
          dx.el("td", { class: "num", "data-label": "Postings" }, e.postings.length),
          dx.el("td", {}, dx.el("button", {
            type: "button", class: "secondary", "aria-label": `Fetch the proof of entry ${e.seq}`,
            onclick: () => {
              document.getElementById("entry-seq").value = e.seq;
              document.getElementById("fetch-proof").requestSubmit();
            },
          }, "Proof"))),
        "No entries of yours after this one.");
      if (page.next_after !== null) after.value = page.next_after;
      status.textContent = page.next_after === null
        ? `${page.entries.length} entries; no more after them.`
        : `${page.entries.length} entries; list again for the next ones.`;
    } catch (error) {
      status.textContent = `Could not list your entries: ${error.message}`;
    }
  });

  dx.keyForm(null);
})();
