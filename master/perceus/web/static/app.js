// perceus-web: live fleet table, boot progress plot, approve/revoke.  Plain JS, no dependencies.
"use strict";
(function () {
  const page = document.body.dataset.page;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const COLORS = ["#2b6cb0", "#1f8a4c", "#b7791f", "#c53030", "#6b46c1", "#2c7a7b", "#d53f8c", "#4a5568",
                  "#dd6b20", "#38a169", "#805ad5", "#718096"];

  function ago(t) {
    if (!t) return "(never)";
    let s = Math.max(0, Math.round(Date.now() / 1000 - t));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60); s = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s ago";
  }
  // Relative times advance every second, but only where someone can see them: on the fleet view the rows in
  // the viewport (rows have one height), elsewhere every .ago (a handful).  The server renders the first text.
  function tick() {
    const table = document.getElementById("fleet");
    if (!table) {
      document.querySelectorAll(".ago").forEach(function (el) { el.textContent = ago(parseFloat(el.dataset.t)); });
      return;
    }
    for (const chunk of table.querySelectorAll(".chunk")) {  // only the chunks in (or near) the viewport
      const r = chunk.getBoundingClientRect();
      if (r.bottom < -200 || r.top > window.innerHeight + 200) continue;
      for (const c of chunk.querySelectorAll("td.ago")) c.textContent = ago(parseFloat(c.dataset.t));
    }
  }
  setInterval(tick, 1000);

  function text(tr, i, value) { if (tr.cells[i].textContent !== value) tr.cells[i].textContent = value; }
  function cell(tag, value, cls) { const el = document.createElement(tag); if (cls) el.className = cls; el.textContent = value; return el; }

  function fillRow(tr, r) {
    if (tr.cells.length === 0) {
      const td = document.createElement("td"), a = document.createElement("a");
      a.href = "/nodes/" + encodeURIComponent(r.hostname); td.appendChild(a); tr.appendChild(td);
      for (const cls of ["st", "", "ago", "", "", "", "hw"]) tr.appendChild(cell("td", "", cls));
    }
    tr.cells[0].firstChild.textContent = r.hostname;
    const st = tr.cells[1];
    st.className = "st state-" + r.state; st.textContent = r.state;
    if (r.stale) { const i = document.createElement("i"); i.textContent = " stale"; st.appendChild(i); }
    text(tr, 2, r.phase); tr.cells[3].dataset.t = r.lastcontact; tr.cells[3].textContent = ago(r.lastcontact);
    text(tr, 4, r.vnfs); text(tr, 5, r.ip); text(tr, 6, r.group); text(tr, 7, r.hw);
  }

  function fleetQuery() { return window.location.search || ""; }

  function applyRows(rows) {
    const table = document.getElementById("fleet");
    if (!table) return;
    const filtered = table.dataset.filtered === "1";
    let needResync = false;
    // New rows are placed in hostname order one by one; many at once (an enrollment storm) refetch the table.
    const fresh = rows.filter(function (r) { return !r.removed && !document.getElementById("row-" + r.nodeid); });
    const many = fresh.length > 50;
    for (const r of rows) {
      const tr = document.getElementById("row-" + r.nodeid);
      if (r.removed) { if (tr) tr.remove(); continue; }
      if (!tr && (filtered || many)) { needResync = true; continue; }
      const row = tr || document.createElement("tr");
      if (!tr) { row.id = "row-" + r.nodeid; insertSorted(table, row, r.hostname); }
      fillRow(row, r);
      // Restart the highlight without forcing a layout per row (two alternating animation classes).
      const on = row.classList.contains("flash-a") ? "flash-b" : "flash-a";
      row.classList.remove("flash-a", "flash-b"); row.classList.add(on);
    }
    if (needResync) throttledResync();
  }
  function insertSorted(table, row, name) {
    for (const tr of table.querySelectorAll("tbody tr")) {
      if (tr.cells[0].textContent > name) { tr.parentNode.insertBefore(row, tr); return; }
    }
    let bodies = table.querySelectorAll("tbody");
    if (!bodies.length) {
      const chunk = document.createElement("div"), t = document.createElement("table");
      chunk.className = "chunk"; t.appendChild(document.createElement("tbody")); chunk.appendChild(t);
      table.appendChild(chunk); bodies = table.querySelectorAll("tbody");
    }
    bodies[bodies.length - 1].appendChild(row);
  }
  let lastResync = 0, resyncTimer = null;
  function throttledResync() {  // at most every 5 s: a storm must not make every browser refetch all the time
    if (resyncTimer) return;
    const wait = Math.max(0, 5000 - (Date.now() - lastResync));
    resyncTimer = setTimeout(function () { resyncTimer = null; lastResync = Date.now(); resync(); }, wait);
  }
  function resync() {  // rebuild the table from /api/v1/fleet (same filter), in chunks like the server's
    fetch("/api/v1/fleet" + fleetQuery(), { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        const table = document.getElementById("fleet");
        for (const chunk of table.querySelectorAll(".chunk")) chunk.remove();
        for (let i = 0; i < data.rows.length; i += 200) {
          const chunk = document.createElement("div"), t = document.createElement("table"), body = document.createElement("tbody");
          chunk.className = "chunk"; t.appendChild(body); chunk.appendChild(t);
          for (const r of data.rows.slice(i, i + 200)) {
            const tr = document.createElement("tr"); tr.id = "row-" + r.nodeid; fillRow(tr, r); body.appendChild(tr);
          }
          table.appendChild(chunk);
        }
        counts(data.counts);
      });
  }
  function counts(c) {
    const badge = document.getElementById("pending-badge");
    if (badge) badge.textContent = c.pending || 0;
    const box = document.getElementById("counts");
    if (!box) return;
    let total = 0;
    for (const state of Object.keys(c)) {
      if (state !== "pending") total += c[state];
      let el = box.querySelector('[data-state="' + state + '"]');
      if (!el) {
        el = document.createElement("a"); el.className = "count state-" + state; el.dataset.state = state;
        el.href = "/?state=" + encodeURIComponent(state); el.appendChild(document.createElement("b"));
        el.appendChild(document.createTextNode(" " + state)); box.insertBefore(el, box.querySelector(".total"));
      }
      el.firstChild.textContent = c[state];
    }
    for (const el of box.querySelectorAll("[data-state]")) if (!(el.dataset.state in c)) el.firstChild.textContent = 0;
    document.getElementById("total").textContent = total;
  }

  // ---------------------------------------------------------------- boot progress plot (inline SVG)
  let series = null, bytes = [];
  function drawPlot() {
    const svg = document.getElementById("svg");
    if (!svg || !series || series.t.length === 0) return;
    const W = 900, H = 320, L = 40, B = 24, T = 8, R = 10;
    const t0 = series.t[0], t1 = Math.max(series.t[series.t.length - 1], t0 + 1);
    let ymax = 1;
    for (const k in series.phases) for (const v of series.phases[k]) ymax = Math.max(ymax, v);
    const x = function (t) { return L + (W - L - R) * (t - t0) / (t1 - t0); };
    const y = function (v) { return H - B - (H - B - T) * v / ymax; };
    const ns = "http://www.w3.org/2000/svg";
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    function add(tag, attrs, body) {
      const el = document.createElementNS(ns, tag);
      for (const a in attrs) el.setAttribute(a, attrs[a]);
      if (body !== undefined) el.textContent = body;
      svg.appendChild(el); return el;
    }
    add("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "#999" });
    add("line", { x1: L, y1: T, x2: L, y2: y(0), stroke: "#999" });
    add("text", { x: L - 6, y: y(ymax) + 4, "text-anchor": "end", "font-size": 11 }, String(ymax));
    add("text", { x: L - 6, y: y(0) + 4, "text-anchor": "end", "font-size": 11 }, "0");
    add("text", { x: W - R, y: H - 6, "text-anchor": "end", "font-size": 11 }, Math.round(t1 - t0) + " s");
    const legend = document.getElementById("legend");
    legend.textContent = "";
    Object.keys(series.phases).forEach(function (k, i) {
      const color = COLORS[i % COLORS.length];
      const pts = series.t.map(function (t, j) { return x(t).toFixed(1) + "," + y(series.phases[k][j]).toFixed(1); });
      add("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2, "data-phase": k });
      const s = document.createElement("span"); s.style.setProperty("--c", color);
      s.textContent = k + " " + series.phases[k][series.phases[k].length - 1]; legend.appendChild(s);
    });
  }
  function loadPlot() {
    fetch("/api/v1/boot", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (d) {
      series = d; drawPlot(); showBytes(d.bytes_served, d.now);
    });
  }
  function showBytes(b, now) {
    const el = document.getElementById("bytes");
    if (!el || b === null || b === undefined) return;
    el.textContent = (b / 1048576).toFixed(1) + " MiB";
    bytes.push([now, b]); if (bytes.length > 10) bytes.shift();
    if (bytes.length > 1) {
      const a = bytes[0], z = bytes[bytes.length - 1];
      document.getElementById("rate").textContent = "(" + ((z[1] - a[1]) / 1048576 / Math.max(1e-3, z[0] - a[0])).toFixed(2) + " MiB/s)";
    }
  }
  function samplePlot(msg) {
    if (!series) return;
    series.t.push(msg.t);
    const n = series.t.length;
    for (const k in msg.phases) if (!(k in series.phases)) series.phases[k] = new Array(n - 1).fill(0);
    for (const k in series.phases) series.phases[k].push(msg.phases[k] || 0);
    drawPlot();
  }

  // ---------------------------------------------------------------- live feed
  const live = document.getElementById("live");
  const watched = document.getElementById("node");  // the node page also gets that node's bus events
  const es = new EventSource("/api/v1/events" + (watched ? "?node=" + encodeURIComponent(watched.dataset.nodeid) : ""));
  es.onopen = function () { live.className = "live on"; };
  es.onerror = function () { live.className = "live off"; };
  es.addEventListener("counts", function (e) { const m = JSON.parse(e.data); counts(m.counts); if (page === "boot") samplePlot(m); });
  es.addEventListener("nodes", function (e) { if (page === "fleet") applyRows(JSON.parse(e.data).rows); });
  es.addEventListener("contacts", function (e) {
    if (page !== "fleet") return;
    const t = JSON.parse(e.data).t;
    for (const id in t) { const tr = document.getElementById("row-" + id); if (tr) tr.cells[3].dataset.t = t[id]; }
  });
  es.addEventListener("resync", function () { if (page === "fleet") throttledResync(); });
  es.addEventListener("event", function (e) {
    const ev = JSON.parse(e.data);
    const h = document.getElementById("node");
    if (page === "node" && h && ev.node === h.dataset.nodeid) {
      const li = document.createElement("li"); li.textContent = ev.event + " " + JSON.stringify(ev.data);
      document.getElementById("events").appendChild(li);
    }
  });
  if (page === "boot") { loadPlot(); setInterval(function () {
    fetch("/api/v1/boot?since=" + (Date.now() / 1000 - 1), { credentials: "same-origin" })
      .then(function (r) { return r.json(); }).then(function (d) { showBytes(d.bytes_served, d.now); });
  }, 3000); }

  // ---------------------------------------------------------------- approve / revoke
  document.addEventListener("click", function (e) {
    const b = e.target.closest("button.act");
    if (!b) return;
    const action = b.dataset.action, target = b.dataset.target;
    const url = action === "approve" ? "/api/v1/pending/" + encodeURIComponent(target) + "/approve"
                                     : "/api/v1/nodes/" + encodeURIComponent(target) + "/revoke";
    b.disabled = true;
    fetch(url, { method: "POST", credentials: "same-origin",
                 headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
                 body: JSON.stringify(action === "unrevoke" ? { undo: true } : {}) })
      .then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); })
      .then(function (res) {
        const out = b.parentNode.querySelector(".result");
        out.textContent = res[1].message || res[1].error || "";
        out.className = "result " + (res[0] === 200 ? "done" : "error");
        if (res[0] === 200) b.remove(); else b.disabled = false;
      });
  });
})();
