"use strict";
/*
 * board.js - the parley status board.
 *
 * It loads the signers (/v1/keyring), the current state (/v1/state) and
 * the latest updates (/v1/updates), then follows the live stream
 * (/v1/events). Every update it shows is checked here, in the browser:
 * its signer must be in the keyring, the fields shown must be the ones
 * in the signed body, the keyring must let the signer speak for them,
 * and the Ed25519 signature over "parley/update/v1", a zero byte and the
 * body must verify with WebCrypto. Only then is it marked verified; a
 * failed check is shown loudly, and a browser without Ed25519 in
 * WebCrypto is told so instead of being shown a mark it did not earn.
 *
 * Nothing received is ever put into the page as HTML: text only.
 */
(function () {
  const CONTEXT = new TextEncoder().encode("parley/update/v1");
  const STATUSES = ["unspecified", "proposed", "talks_scheduled",
    "talks_in_progress", "awaiting_response", "counter_proposal",
    "agreed_in_principle", "signed", "in_effect", "completed", "stalled",
    "suspended", "collapsed"];
  const KINDS = ["update", "correction", "retraction"];
  const TIMELINE_MAX = 100;

  const board = {
    signers: new Map(),   /* public key (base64) -> signer of /v1/keyring */
    cells: new Map(),     /* "negotiation|phase|party" -> update */
    stateSeq: 0,          /* the state is exact through this seq */
    timeline: [],         /* updates and gaps, newest first */
    seen: new Set(),      /* seqs in the timeline */
    lastId: 0,            /* the last seq received */
    verdicts: new Map(),  /* update text -> {state, reason} */
    ed25519: null,        /* does WebCrypto verify Ed25519 here? */
    source: null,         /* the EventSource */
    lost: false,          /* the live connection was lost */
    filters: { negotiation: [], party: [], phase: [] },
  };

  /* ------------------------------------------------------------ helpers */

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function b64(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function words(name) {
    return String(name).replace(/_/g, " ");
  }

  function ago(ms) {
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 45) return "just now";
    const m = Math.round(s / 60);
    if (m < 60) return m + " min ago";
    const h = Math.round(m / 60);
    if (h < 36) return h + " h ago";
    const d = Math.round(h / 24);
    if (d < 30) return d + " days ago";
    return new Date(ms).toLocaleDateString();
  }

  function timeEl(ms) {
    const d = new Date(ms);
    return el("time", { datetime: d.toISOString(), title: d.toLocaleString(),
      "data-ms": ms }, ago(ms));
  }

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  /* ------------------------------------------------------ signed bytes */

  /* Decode a StatusUpdate (proto/parley.proto) from its signed bytes. */
  function decodeUpdate(buf) {
    const u = { negotiation: "", parties: [], phase: 0, status: 0, kind: 0,
      references: [], headline: "", body: "", location: "", scheduled_at: 0n,
      issued_at: 0n, signer_seq: 0n, expires_at: 0n };
    const text = new TextDecoder("utf-8", { fatal: true });
    let i = 0;
    function varint() {
      let v = 0n, shift = 0n;
      for (;;) {
        if (i >= buf.length || shift > 63n) throw new Error("bad varint");
        const b = buf[i++];
        v |= BigInt(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
        shift += 7n;
      }
    }
    function bytes() {
      const n = Number(varint());
      if (i + n > buf.length) throw new Error("field past the end");
      const out = buf.subarray(i, i + n);
      i += n;
      return out;
    }
    const signed = (v) => BigInt.asIntN(64, v);
    while (i < buf.length) {
      const key = Number(varint());
      const field = key >>> 3, wire = key & 7;
      if (wire === 2) {
        const b = bytes();
        switch (field) {
          case 1: u.negotiation = text.decode(b); break;
          case 2: u.parties.push(text.decode(b)); break;
          case 6: {           /* packed references */
            const save = [buf, i];
            buf = b; i = 0;
            while (i < buf.length) u.references.push(varint());
            [buf, i] = save;
            break;
          }
          case 7: u.headline = text.decode(b); break;
          case 8: u.body = text.decode(b); break;
          case 9: u.location = text.decode(b); break;
          default: throw new Error("unexpected field " + field);
        }
      } else if (wire === 0) {
        const v = varint();
        switch (field) {
          case 3: u.phase = Number(v); break;
          case 4: u.status = Number(v); break;
          case 5: u.kind = Number(v); break;
          case 6: u.references.push(v); break;
          case 10: u.scheduled_at = signed(v); break;
          case 11: u.issued_at = signed(v); break;
          case 12: u.signer_seq = v; break;
          case 13: u.expires_at = signed(v); break;
          default: throw new Error("unexpected field " + field);
        }
      } else {
        throw new Error("unexpected wire type " + wire);
      }
    }
    return u;
  }

  /* The first field shown that differs from the signed one, or null.
   * (Numbers past 2^53 are compared as the JSON parser rounded them.) */
  function differs(signed, shown) {
    const num = (a, b) => Number(a) === b;
    const checks = [
      ["negotiation", signed.negotiation === shown.negotiation],
      ["parties", JSON.stringify(signed.parties) === JSON.stringify(shown.parties)],
      ["phase", signed.phase === shown.phase],
      ["status", STATUSES[signed.status] === shown.status],
      ["kind", KINDS[signed.kind] === shown.kind],
      ["references", Array.isArray(shown.references)
        && signed.references.length === shown.references.length
        && signed.references.every((r, k) => num(r, shown.references[k]))],
      ["headline", signed.headline === shown.headline],
      ["body", signed.body === shown.body],
      ["location", signed.location === shown.location],
      ["scheduled_at", num(signed.scheduled_at, shown.scheduled_at)],
      ["issued_at", num(signed.issued_at, shown.issued_at)],
      ["expires_at", num(signed.expires_at, shown.expires_at)],
      ["signer_seq", num(signed.signer_seq, shown.signer_seq)],
    ];
    for (const [name, same] of checks) if (!same) return name;
    return null;
  }

  /* Does a keyring list ("*", "a,b", phases "0-3,7") hold value? */
  function listHas(list, value) {
    if (list === "*") return true;
    for (const item of String(list).split(",")) {
      const dash = item.indexOf("-");
      if (typeof value === "number" && dash > 0) {
        if (value >= Number(item.slice(0, dash)) && value <= Number(item.slice(dash + 1))) return true;
      } else if (item === String(value)) {
        return true;
      }
    }
    return false;
  }

  /* RFC 8032, test 1: the empty message. */
  const RFC8032_PK = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
  const RFC8032_SIG = "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc+bRr0lv18Flbv"
    + "iRlUUFDjnoQCw==";

  /* Find out once whether WebCrypto verifies Ed25519, and correctly. */
  async function probeEd25519() {
    if (!window.crypto || !crypto.subtle) return false;
    try {
      const key = await crypto.subtle.importKey("raw", b64(RFC8032_PK),
        { name: "Ed25519" }, false, ["verify"]);
      const sig = b64(RFC8032_SIG);
      const good = await crypto.subtle.verify({ name: "Ed25519" }, key, sig, new Uint8Array(0));
      sig[0] ^= 1;
      const bad = await crypto.subtle.verify({ name: "Ed25519" }, key, sig, new Uint8Array(0));
      return good === true && bad === false;
    } catch (e) {
      return false;
    }
  }

  function keyOf(signer) {
    if (!signer.key) {
      signer.key = crypto.subtle.importKey("raw", b64(signer.public_key),
        { name: "Ed25519" }, false, ["verify"]);
    }
    return signer.key;
  }

  /* Check one update: {state: "ok" | "failed" | "unsupported", reason}. */
  async function check(u) {
    const fail = (reason) => ({ state: "failed", reason });
    const signer = board.signers.get(u.signer);
    if (!signer) return fail("its signer is not in the gateway's keyring");
    let body, sig;
    try {
      body = b64(u.signed_body);
      sig = b64(u.signature);
    } catch (e) {
      return fail("its signed bytes are not base64");
    }
    if (sig.length !== 64) return fail("its signature is not 64 bytes");
    let signed;
    try {
      signed = decodeUpdate(body);
    } catch (e) {
      return fail("its signed body does not decode");
    }
    const field = differs(signed, u);
    if (field) return fail("the " + field + " shown is not the one signed");
    if (!listHas(signer.negotiations, signed.negotiation)
        || !signed.parties.every((p) => listHas(signer.parties, p))
        || !listHas(signer.phases, signed.phase)) {
      return fail("the keyring does not let " + signer.name + " speak for this");
    }
    if (!board.ed25519) return { state: "unsupported" };
    const msg = new Uint8Array(CONTEXT.length + 1 + body.length);
    msg.set(CONTEXT, 0);
    msg[CONTEXT.length] = 0;
    msg.set(body, CONTEXT.length + 1);
    try {
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, await keyOf(signer), sig, msg);
      return ok ? { state: "ok" } : fail("the signature does not verify");
    } catch (e) {
      return fail("the signature could not be checked: " + e.message);
    }
  }

  /* The verdict of an update (pending until its check is done). */
  function verdict(u) {
    const k = u._text;
    let v = board.verdicts.get(k);
    if (!v) {
      v = { state: "pending" };
      board.verdicts.set(k, v);
      check(u).then((r) => {
        board.verdicts.set(k, r);
        scheduleRender();
      });
    }
    return v;
  }

  function verifyEl(u) {
    const v = verdict(u);
    const text = {
      ok: "\u2713 signature verified",
      pending: "checking signature\u2026",
      unsupported: "not verified here (this browser has no Ed25519)",
      failed: "\u2717 SIGNATURE CHECK FAILED: " + v.reason,
    }[v.state];
    return el("p", { class: "verify", "data-verify": v.state,
      role: v.state === "failed" ? "alert" : null }, text);
  }

  /* --------------------------------------------------------------- state */

  function cellKey(negotiation, phase, party) {
    return negotiation + "|" + phase + "|" + party;
  }

  function keep(u, text) {
    u._text = text || JSON.stringify(u);
    return u;
  }

  /*
   * The one place that turns a /v1/state answer into cells. The gateway
   * groups its cells negotiation -> phase -> party, each the update that
   * holds that entry (docs/protocol.md section 5: an update naming
   * several parties may hold some of them only); here each cell is
   * taken as it comes, never from an update's party list.
   */
  function cellsFromState(doc) {
    const cells = new Map();
    for (const n of doc.negotiations) {
      for (const p of n.phases) {
        for (const [party, u] of Object.entries(p.parties)) {
          cells.set(cellKey(n.negotiation, p.phase, party), keep(u));
        }
      }
    }
    return cells;
  }

  /* A plain update seen after the state, the newest there is: it holds
   * each of its parties' entries, unless something newer is there, or
   * none if it has expired already (nothing older comes back), as the
   * gateway applies it (gateway/state.c). Corrections and retractions are
   * never applied here: the gateway's state is fetched again. */
  function applyLive(u) {
    const expired = u.expires_at > 0 && u.expires_at <= Date.now();
    for (const party of u.parties) {
      const k = cellKey(u.negotiation, u.phase, party);
      const old = board.cells.get(k);
      if (old && old.seq >= u.seq) continue;
      if (expired) board.cells.delete(k);
      else board.cells.set(k, u);
    }
  }

  let refreshing = null;
  async function refreshState() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const doc = await getJSON("/v1/state");
        board.cells = cellsFromState(doc);
        board.stateSeq = doc.seq;
        const after = board.timeline.filter((u) => u.seq > doc.seq && !u.gap && u.kind === "update");
        after.sort((a, b) => a.seq - b.seq).forEach(applyLive);
        scheduleRender();
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  /* ------------------------------------------------------------ timeline */

  function addToTimeline(u) {
    if (board.seen.has(u.seq)) return false;
    board.seen.add(u.seq);
    board.timeline.push(u);
    board.timeline.sort((a, b) => b.seq - a.seq);
    while (board.timeline.length > TIMELINE_MAX) {
      board.seen.delete(board.timeline.pop().seq);
    }
    return true;
  }

  function onUpdate(u) {
    board.lastId = Math.max(board.lastId, u.seq);
    if (!addToTimeline(u)) return;
    if (u.seq > board.stateSeq) {
      if (u.kind === "update") {
        applyLive(u);
      } else {
        /* The gateway fetches its state again and says so with a
         * "state" event; ask now too, in case it already has. */
        refreshState().catch(() => {});
      }
    }
    u._new = true;
    scheduleRender();
  }

  function onGap(g) {
    board.lastId = Math.max(board.lastId, g.to);
    addToTimeline({ gap: true, seq: g.to, from: g.from, to: g.to, _text: "gap" + g.to });
    scheduleRender();
  }

  /* ------------------------------------------------------------- filters */

  function readFilters() {
    const q = new URLSearchParams(location.search);
    for (const name of ["negotiation", "party", "phase"]) {
      board.filters[name] = q.getAll(name).flatMap((v) => v.split(",")).filter((v) => v !== "");
    }
  }

  function writeFilters() {
    const q = new URLSearchParams();
    for (const name of ["negotiation", "party", "phase"]) {
      if (board.filters[name].length) q.set(name, board.filters[name].join(","));
    }
    const s = q.toString();
    history.pushState(null, "", s ? "?" + s : location.pathname);
  }

  function passes(name, value) {
    const f = board.filters[name];
    return f.length === 0 || f.includes(String(value));
  }

  function updatePasses(u) {
    if (u.gap) return true;
    return passes("negotiation", u.negotiation) && passes("phase", u.phase)
      && (board.filters.party.length === 0 || u.parties.some((p) => passes("party", p)));
  }

  function fillSelect(id, name, values) {
    const sel = document.getElementById(id);
    const chosen = board.filters[name].join(",");
    /* Rebuilt only when its choices change, so that a list being used
     * with the keyboard is left alone. */
    const sig = JSON.stringify([values, chosen]);
    if (sel.dataset.sig === sig) return;
    sel.dataset.sig = sig;
    const options = [el("option", { value: "" }, "all")];
    for (const v of values) options.push(el("option", { value: String(v) }, name === "phase" ? phaseName(v) : v));
    if (chosen && !values.map(String).includes(chosen)) {
      options.push(el("option", { value: chosen }, chosen.replace(/,/g, ", ")));
    }
    sel.replaceChildren(...options);
    sel.value = chosen;
  }

  function phaseName(p) {
    return Number(p) === 0 ? "0: the deal as a whole" : "phase " + p;
  }

  /* -------------------------------------------------------------- render */

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      render();
    });
  }

  function cellEl(u, negotiation, phase, party) {
    const attrs = { "data-negotiation": negotiation, "data-phase": phase, "data-party": party };
    if (!u) return el("td", Object.assign({ class: "none" }, attrs), "\u2014",
      el("span", { class: "sr" }, " no update"));
    const v = verdict(u);
    const kind = u.kind !== "update" ? el("span", { class: "kind" }, " " + u.kind) : null;
    return el("td", Object.assign({ "data-seq": u.seq, "data-verify": v.state }, attrs),
      el("span", { class: "status", "data-status": u.status }, words(u.status)), kind,
      el("p", { class: "headline" }, u.headline),
      el("p", { class: "meta" }, (u.signer_name || u.signer_id) + " \u00b7 ", timeEl(u.issued_at),
        " \u00b7 #" + u.seq),
      verifyEl(u));
  }

  function render() {
    const negs = new Set(), parties = new Set(), phases = new Set();
    for (const u of board.cells.values()) {
      negs.add(u.negotiation);
      u.parties.forEach((p) => parties.add(p));
      phases.add(u.phase);
    }
    for (const u of board.timeline) {
      if (u.gap) continue;
      negs.add(u.negotiation);
      u.parties.forEach((p) => parties.add(p));
      phases.add(u.phase);
    }
    fillSelect("f-negotiation", "negotiation", [...negs].sort());
    fillSelect("f-party", "party", [...parties].sort());
    fillSelect("f-phase", "phase", [...phases].sort((a, b) => a - b));

    /* One panel per negotiation, a row per phase, a column per party. */
    const byNeg = new Map();
    for (const [k, u] of board.cells) {
      const [negotiation, phase, party] = k.split("|");
      if (!passes("negotiation", negotiation) || !passes("phase", phase) || !passes("party", party)) continue;
      if (!byNeg.has(negotiation)) byNeg.set(negotiation, { phases: new Set(), parties: new Set() });
      byNeg.get(negotiation).phases.add(Number(phase));
      byNeg.get(negotiation).parties.add(party);
    }
    const panels = [];
    for (const negotiation of [...byNeg.keys()].sort()) {
      const g = byNeg.get(negotiation);
      const cols = [...g.parties].sort();
      const rows = [...g.phases].sort((a, b) => a - b);
      const head = el("tr", {}, el("th", { scope: "col" }, "Phase"),
        ...cols.map((p) => el("th", { scope: "col" }, p)));
      const body = rows.map((ph) => el("tr", {}, el("th", { scope: "row" }, phaseName(ph)),
        ...cols.map((p) => cellEl(board.cells.get(cellKey(negotiation, ph, p)), negotiation, ph, p))));
      const id = "neg-" + negotiation;
      panels.push(el("section", { class: "panel", "aria-labelledby": id, "data-negotiation": negotiation },
        el("h2", { id }, negotiation),
        el("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": negotiation + ", scrolls sideways" },
          el("table", {},
            el("caption", {}, "Latest status by phase (rows) and party (columns)"),
            el("thead", {}, head), el("tbody", {}, ...body)))));
    }
    const boardEl = document.getElementById("board");
    const empty = document.getElementById("board-empty");
    empty.hidden = panels.length > 0;
    boardEl.replaceChildren(empty, ...panels);

    const items = board.timeline.filter(updatePasses).map((u) => {
      if (u.gap) {
        return el("li", { class: "gap", "data-seq": u.seq },
          "Updates " + u.from + "\u2013" + u.to + " are no longer held by the server.");
      }
      const v = verdict(u);
      const refs = u.references && u.references.length ? " (of #" + u.references.join(", #") + ")" : "";
      return el("li", { "data-seq": u.seq, "data-verify": v.state, class: u._new ? "new" : null },
        el("span", { class: "status", "data-status": u.status }, words(u.status)),
        u.kind !== "update" ? el("span", { class: "kind" }, " " + u.kind + refs) : null,
        el("p", { class: "headline" }, u.headline),
        el("p", { class: "meta" }, u.negotiation + " \u00b7 " + phaseName(u.phase) + " \u00b7 "
          + u.parties.join(", ") + " \u00b7 " + (u.signer_name || u.signer_id) + " \u00b7 ",
          timeEl(u.issued_at), " \u00b7 #" + u.seq),
        verifyEl(u));
    });
    document.getElementById("timeline").replaceChildren(...items);

    /* Say it at the top too when a check failed. */
    let failed = 0;
    for (const v of board.verdicts.values()) if (v.state === "failed") failed++;
    const alarm = document.getElementById("alarm");
    const text = failed === 0 ? "" : "\u26a0 " + failed + (failed === 1 ? " update" : " updates")
      + " failed the signature check in this browser: do not trust " + (failed === 1 ? "it" : "them") + ".";
    if (alarm.textContent !== text) alarm.textContent = text;
    alarm.hidden = failed === 0;
  }

  /* ---------------------------------------------------------------- live */

  function banner(state, text) {
    const b = document.getElementById("banner");
    b.dataset.state = state;
    b.textContent = text;
    b.setAttribute("role", state === "lost" ? "alert" : "status");
  }

  let backTimer = null;
  function connect() {
    const es = new EventSource("/v1/events?since=" + (board.lastId + 1));
    board.source = es;
    const take = (ev, fn) => {
      try {
        fn(JSON.parse(ev.data), ev.data);
      } catch (e) {
        /* one bad event must not stop the board */
      }
    };
    es.addEventListener("update", (ev) => take(ev, (u, text) => onUpdate(keep(u, text))));
    es.addEventListener("gap", (ev) => take(ev, onGap));
    es.addEventListener("state", () => refreshState().catch(() => {}));
    es.onopen = () => {
      if (board.lost) {
        board.lost = false;
        banner("back", "Live again: the connection is back; nothing was missed.");
        clearTimeout(backTimer);
        backTimer = setTimeout(() => { if (!board.lost) banner("live", "Live"); }, 5000);
        refreshState().catch(() => {});
      } else {
        banner("live", "Live");
      }
    };
    es.onerror = () => {
      board.lost = true;
      clearTimeout(backTimer);
      banner("lost", "Live connection lost: reconnecting\u2026 (what you see may be out of date)");
      if (es.readyState === EventSource.CLOSED) {
        /* The server refused the stream: try again, after what we have. */
        es.close();
        setTimeout(connect, 2000);
      }
    };
  }

  async function start() {
    readFilters();
    const cryptoNote = document.getElementById("crypto");
    board.ed25519 = await probeEd25519();
    cryptoNote.dataset.state = board.ed25519 ? "supported" : "unsupported";
    cryptoNote.textContent = board.ed25519
      ? "Signatures are checked in this browser (WebCrypto Ed25519)."
      : "This browser cannot check Ed25519 signatures (WebCrypto has no Ed25519 here): updates are shown as \u201cnot verified here\u201d.";
    for (;;) {
      try {
        const [ring, state] = await Promise.all([getJSON("/v1/keyring"), getJSON("/v1/state")]);
        for (const s of ring.signers) board.signers.set(s.public_key, s);
        board.cells = cellsFromState(state);
        board.stateSeq = state.seq;
        board.lastId = state.seq;
        if (state.seq > 0) {
          const page = await getJSON("/v1/updates?limit=30&until=" + state.seq);
          page.updates.forEach((u) => addToTimeline(keep(u)));
        }
        break;
      } catch (e) {
        banner("lost", "Waiting for the gateway\u2026 (" + e.message + ")");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    render();
    connect();
    setInterval(() => {
      for (const t of document.querySelectorAll("time[data-ms]")) t.textContent = ago(Number(t.dataset.ms));
    }, 30000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("filters");
    form.addEventListener("change", (ev) => {
      const name = ev.target.name;
      board.filters[name] = ev.target.value ? ev.target.value.split(",") : [];
      writeFilters();
      render();
    });
    form.addEventListener("submit", (ev) => ev.preventDefault());
    document.getElementById("f-clear").addEventListener("click", () => {
      board.filters = { negotiation: [], party: [], phase: [] };
      writeFilters();
      render();
    });
    window.addEventListener("popstate", () => {
      readFilters();
      render();
    });
    start();
  });
})();
