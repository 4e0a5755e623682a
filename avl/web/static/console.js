// avl console page: no framework, no build step, nothing from the network but the
// JSON API next to it. Every value from the server goes into the page as text
// (textContent, createElement, SVG attributes): never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const base = new URL(".", window.location.href);
  const api = (path) => new URL(path, base).toString();
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) { node.setAttribute(k, String(v)); }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function setStatus(text) { $("status").textContent = text; }

  // ---- credentials ------------------------------------------------------------------
  // None on loopback without an authenticator; otherwise an API key or a JWT, kept for
  // this tab only (sessionStorage) and sent as a bearer token (the server takes both).
  const KEY = "avl.credentials";
  function storedKey() { return window.sessionStorage.getItem(KEY); }
  function authHeaders(extra) {
    const key = storedKey();
    return key ? { ...extra, authorization: `Bearer ${key}` } : { ...extra };
  }
  function call(url, init) {
    return fetch(url, { ...(init || {}), headers: authHeaders((init || {}).headers) });
  }
  function showSignIn(message) {
    $("signin").hidden = false;
    $("key-form").hidden = false;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("api-key").focus();
    setStatus(message);
  }
  function needCredentials(problem) {
    showSignIn(`Sign in: ${(problem && problem.detail) || "credentials required"}`);
  }
  function signOut() {
    window.sessionStorage.removeItem(KEY);
    resetThread();
    $("history").replaceChildren();
    $("examples").replaceChildren();
    $("recent").hidden = true;
    $("limits").hidden = true;
    $("limits").textContent = "";
    $("sql").value = "";
    showVerdict($("verdict"), $("violations"), null);
    showSignIn("Signed out.");
  }

  function showLimits(response) {
    const h = (name) => response.headers.get(name) ?? response.headers.get("x-" + name);
    const remaining = h("ratelimit-remaining");
    const limit = h("ratelimit-limit");
    if (remaining !== null) {
      $("limits").textContent = `${remaining}/${limit || "?"} requests left`;
      $("limits").hidden = false;
    }
  }

  async function loadCaller() {
    const response = await call(api("v1/ratelimit"));
    if (response.status === 401) { needCredentials(await response.json()); return; }
    if (!response.ok) { return; }
    $("signin").hidden = true;
    $("key-form").hidden = true;
    $("sign-out").hidden = !storedKey();
    const status = await response.json();
    $("who").textContent = `signed in as ${status.key.replace(/^web:/, "")}`;
    if (status.limited && status.remaining !== null) {
      $("limits").textContent = `${status.remaining}/${status.limit ?? "?"} requests left`;
      $("limits").hidden = false;
    }
  }

  // ---- values -----------------------------------------------------------------------
  const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  function isNumber(v) {
    return (typeof v === "number" && Number.isFinite(v)) || (typeof v === "string" && NUMERIC.test(v.trim()));
  }
  // A column is numeric when every value that is not NULL is a number (or a decimal
  // sent as a string) and there is at least one.
  function numericColumns(columns, rows) {
    return columns.map((_, i) => {
      let seen = 0;
      for (const row of rows) {
        const v = row[i];
        if (v === null || v === undefined) { continue; }
        if (typeof v === "boolean" || !isNumber(v)) { return false; }
        seen += 1;
      }
      return seen > 0;
    });
  }
  function cellText(v) {
    if (v === null || v === undefined) { return "NULL"; }
    if (typeof v === "object") { return JSON.stringify(v); }
    return String(v);
  }

  // ---- verdicts, tables -------------------------------------------------------------
  function showVerdict(box, list, verdict) {
    list.replaceChildren();
    if (!verdict) { box.textContent = ""; box.className = ""; return; }
    box.className = verdict.allowed ? "allowed" : "refused";
    box.textContent = verdict.allowed ? "Allowed" : "Refused";
    for (const v of verdict.violations || []) {
      const li = el("li");
      li.append(el("code", "", v.code), " " + (v.message || ""));
      if (v.position) { li.append(` (line ${v.position.line}, col ${v.position.col})`); }
      list.append(li);
    }
  }

  function buildTable(columns, rows) {
    const numeric = numericColumns(columns, rows);
    const table = el("table", "rows");
    const thead = table.createTHead();
    const head = document.createElement("tr");
    columns.forEach((c, i) => { head.append(el("th", numeric[i] ? "num" : "", c)); });
    thead.append(head);
    const tbody = table.createTBody();
    for (const row of rows) {
      const tr = document.createElement("tr");
      row.forEach((cell, i) => {
        const text = cellText(cell);
        let cls = numeric[i] ? "num" : "text";
        if (cell === null || cell === undefined) { cls += " null"; }
        else if (!numeric[i] && text.length > 60) { cls += " long"; }
        tr.append(el("td", cls, text));
      });
      tbody.append(tr);
    }
    return table;
  }

  // ---- CSV --------------------------------------------------------------------------
  // RFC 4180 quoting; a text cell a spreadsheet would read as a formula (= + - @, or a
  // tab or carriage return first) gets a leading apostrophe. Numbers stay numbers.
  function csvCell(v, header) {
    if (v === null || v === undefined) { return ""; }
    let s = typeof v === "object" ? JSON.stringify(v) : String(v);
    if ((header || typeof v === "string") && /^[=+\-@\t\r]/.test(s)) { s = "'" + s; }
    if (/[",\r\n]/.test(s)) { s = '"' + s.replace(/"/g, '""') + '"'; }
    return s;
  }
  function toCsv(columns, rows) {
    const lines = [columns.map((c) => csvCell(c, true)).join(",")];
    for (const row of rows) { lines.push(row.map((v) => csvCell(v, false)).join(",")); }
    return lines.join("\r\n") + "\r\n";
  }
  function slug(text) {
    const s = String(text || "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
    return s.slice(0, 48).replace(/-+$/, "") || "result";
  }
  function downloadCsv(columns, rows, name) {
    const blob = new Blob(["\ufeff" + toCsv(columns, rows)], { type: "text/csv;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const a = el("a", "sr-only");
    a.href = url;
    a.download = `avl-${slug(name)}.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  }

  // ---- clipboard --------------------------------------------------------------------
  function copyFallback(text) {
    const before = document.activeElement;
    const area = el("textarea", "clip-helper");
    area.value = text;
    area.setAttribute("readonly", "");
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    if (before && typeof before.focus === "function") { before.focus(); }
    return ok;
  }
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* fall back */ }
    }
    return copyFallback(text);
  }
  function flash(button, text) {
    const before = button.dataset.label || button.textContent;
    button.dataset.label = before;
    button.textContent = text;
    button.classList.add("done");
    setTimeout(() => { button.textContent = before; button.classList.remove("done"); }, 1600);
  }

  // ---- charts: a small Vega-Lite subset (bar, line, point) drawn as SVG --------------
  const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  function tickLabel(v, step) {
    if (Math.abs(v) >= 10000) { return compact.format(v); }
    const digits = step > 0 && step < 1 ? Math.min(6, Math.ceil(-Math.log10(step))) : 0;
    return new Intl.NumberFormat(undefined, { maximumFractionDigits: digits }).format(v);
  }
  // Round ticks over [lo, hi]; whole steps when the values are whole numbers (counts).
  function niceTicks(lo, hi, count, whole) {
    if (lo === hi) { lo -= 1; hi += 1; }
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const err = raw / mag;
    let step = mag * (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1);
    if (whole && step < 1) { step = 1; }
    const start = Math.floor(lo / step) * step;
    const stop = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = start; v <= stop + step / 2; v += step) { ticks.push(Math.round(v / step) * step); }
    return { ticks, step, lo: start, hi: stop };
  }
  function naturalCompare(a, b) {
    if (isNumber(a) && isNumber(b)) { return Number(a) - Number(b); }
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }
  function truncate(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  // Axis labels lose their middle (labels often share a prefix: "Region 1", "Region 2").
  function shorten(s, n) {
    if (s.length <= n) { return s; }
    const head = Math.ceil((n - 1) / 2);
    return s.slice(0, head) + "…" + s.slice(s.length - (n - 1 - head));
  }
  const DISCRETE = new Set(["nominal", "ordinal", "temporal"]);

  // The chart's pieces from the spec, or null when the spec is not one this renderer
  // draws (then no chart is shown: the table still is).
  function readSpec(spec) {
    if (!spec || typeof spec !== "object") { return null; }
    const values = spec.data && Array.isArray(spec.data.values) ? spec.data.values : null;
    const enc = spec.encoding || {};
    const mark = typeof spec.mark === "string" ? spec.mark : spec.mark && spec.mark.type;
    if (!values || !values.length || !enc.x || !enc.y || !enc.x.field || !enc.y.field) { return null; }
    if (!["bar", "line", "point", "circle", "square"].includes(mark)) { return null; }
    const x = { field: String(enc.x.field), type: enc.x.type || "nominal", title: enc.x.title, sort: enc.x.sort, scale: enc.x.scale || {} };
    const y = { field: String(enc.y.field), type: enc.y.type || "quantitative", title: enc.y.title, sort: enc.y.sort, scale: enc.y.scale || {} };
    const xq = x.type === "quantitative";
    const yq = y.type === "quantitative";
    if (!xq && !yq) { return null; }
    if ((!xq && !DISCRETE.has(x.type)) || (!yq && !DISCRETE.has(y.type))) { return null; }
    // The value axis is the quantitative one (y when both are).
    const horizontal = mark === "bar" && xq && !yq;
    const cat = horizontal ? y : x;
    const val = horizontal ? x : y;
    const points = [];
    for (const d of values) {
      if (!d || typeof d !== "object") { continue; }
      const c = d[cat.field];
      const v = d[val.field];
      if (!isNumber(v)) { continue; }
      if (cat.type === "quantitative" && !isNumber(c)) { continue; }
      points.push({ c: cat.type === "quantitative" ? Number(c) : cellText(c), v: Number(v) });
    }
    if (!points.length) { return null; }
    if (cat.type === "quantitative") { points.sort((a, b) => a.c - b.c); }
    else if (cat.sort === "descending") { points.sort((a, b) => naturalCompare(b.c, a.c)); }
    else if (cat.sort === "-y" || cat.sort === "-x") { points.sort((a, b) => b.v - a.v); }
    else if (cat.sort === "y" || cat.sort === "x") { points.sort((a, b) => a.v - b.v); }
    else if (cat.sort !== null) { points.sort((a, b) => naturalCompare(a.c, b.c)); }
    return {
      mark: mark === "bar" ? "bar" : mark === "line" ? "line" : "point",
      horizontal, cat, val, points,
      title: spec.title ? String(spec.title.text || spec.title) : "",
      description: spec.description ? String(spec.description) : "",
    };
  }

  function drawChart(holder, spec) {
    const c = readSpec(spec);
    if (!c) { return false; }
    const width = Math.max(260, Math.floor(holder.clientWidth || 600));
    const narrow = width < 480;
    const catNames = c.cat.type === "quantitative" ? [] : [...new Set(c.points.map((p) => p.c))];
    const catTitle = String(c.cat.title || c.cat.field);
    const valTitle = String(c.val.title || c.val.field);
    const zero = c.mark === "bar" || c.val.scale.zero !== false;
    let vlo = Math.min(...c.points.map((p) => p.v));
    let vhi = Math.max(...c.points.map((p) => p.v));
    if (zero) { vlo = Math.min(0, vlo); vhi = Math.max(0, vhi); }
    const vt = niceTicks(vlo, vhi, narrow ? 4 : 6, c.points.every((p) => Number.isInteger(p.v)));
    const valLabels = vt.ticks.map((t) => tickLabel(t, vt.step));
    const charW = narrow ? 6.2 : 6.8;

    let height;
    let left;
    let bottom;
    let rotate = false;
    let every = 1;
    const top = 26;
    const right = 16;
    let labelMax = narrow ? 14 : 18;
    if (c.horizontal) {
      const longest = Math.max(...catNames.map((s) => Math.min(s.length, labelMax)));
      left = Math.min(width * 0.4, 14 + longest * charW);
      bottom = 44;
      height = top + bottom + Math.max(120, catNames.length * (narrow ? 24 : 28));
    } else {
      const longestVal = Math.max(...valLabels.map((s) => s.length));
      left = 26 + longestVal * charW;
      height = narrow ? 240 : 300;
      bottom = 44;
      if (catNames.length) {
        const band = (width - left - right) / catNames.length;
        const longest = Math.max(...catNames.map((s) => s.length));
        if (longest * charW > band - 4) {
          rotate = true;
          every = Math.max(1, Math.ceil(15 / band)); // rotated labels need ~15 px each
          bottom = 24 + Math.min(longest, labelMax) * charW * 0.66;
          // the first label leans left past the plot: keep it inside the picture
          left = Math.max(left, Math.min(longest, labelMax) * charW * 0.77 - band / 2 + 6);
        }
      }
    }
    const plotW = Math.max(40, width - left - right);
    const plotH = Math.max(60, height - top - bottom);

    const root = svg("svg", {
      class: "chart-svg", viewBox: `0 0 ${width} ${height}`, width, height,
      role: "img", "aria-label": c.title || c.description || `${valTitle} by ${catTitle}`,
    });
    if (c.title || c.description) { root.append(svg("title", {}, c.title || c.description)); }
    const g = svg("g", { transform: `translate(${left},${top})` });
    root.append(g);

    // Value scale (y, or x for horizontal bars).
    const vspan = vt.hi - vt.lo || 1;
    const vpos = c.horizontal
      ? (v) => ((v - vt.lo) / vspan) * plotW
      : (v) => plotH - ((v - vt.lo) / vspan) * plotH;
    // Category scale: bands for discrete values, linear for a quantitative one.
    let cpos;
    let band = 0;
    let ct = null;
    if (catNames.length) {
      const span = c.horizontal ? plotH : plotW;
      band = span / catNames.length;
      const index = new Map(catNames.map((n, i) => [n, i]));
      cpos = (v) => (index.get(v) + 0.5) * band;
    } else {
      // Vega-Lite's default: a quantitative scale includes zero unless told not to.
      const zeroC = c.cat.scale.zero !== false;
      const lo = Math.min(...c.points.map((p) => p.c), ...(zeroC ? [0] : []));
      const hi = Math.max(...c.points.map((p) => p.c), ...(zeroC ? [0] : []));
      ct = niceTicks(lo, hi, narrow ? 4 : 6, c.points.every((p) => Number.isInteger(p.c)));
      const span = ct.hi - ct.lo || 1;
      cpos = (v) => ((v - ct.lo) / span) * plotW;
    }

    // Grid and value axis.
    const grid = svg("g", { class: "grid" });
    vt.ticks.forEach((t, i) => {
      const p = vpos(t);
      if (c.horizontal) {
        grid.append(svg("line", { x1: p, x2: p, y1: 0, y2: plotH }));
        g.append(svg("text", { class: "tick", x: p, y: plotH + 16, "text-anchor": "middle" }, valLabels[i]));
      } else {
        grid.append(svg("line", { x1: 0, x2: plotW, y1: p, y2: p }));
        g.append(svg("text", { class: "tick", x: -8, y: p + 4, "text-anchor": "end" }, valLabels[i]));
      }
    });
    g.prepend(grid);

    // Category axis.
    if (catNames.length) {
      catNames.forEach((name, i) => {
        if (i % every !== 0) { return; }
        const p = cpos(name);
        const label = shorten(name, labelMax);
        let t;
        if (c.horizontal) {
          t = svg("text", { class: "tick", x: -8, y: p + 4, "text-anchor": "end" }, label);
        } else if (rotate) {
          t = svg("text", { class: "tick", x: p, y: plotH + 12, "text-anchor": "end", transform: `rotate(-40 ${p} ${plotH + 12})` }, label);
        } else {
          t = svg("text", { class: "tick", x: p, y: plotH + 18, "text-anchor": "middle" }, label);
        }
        if (label !== name) { t.append(svg("title", {}, name)); }
        g.append(t);
      });
    } else {
      ct.ticks.forEach((t) => {
        g.append(svg("text", { class: "tick", x: cpos(t), y: plotH + 18, "text-anchor": "middle" }, tickLabel(t, ct.step)));
      });
    }
    const baseValue = vt.lo <= 0 && vt.hi >= 0 ? 0 : vt.lo;
    const b0 = vpos(baseValue);
    const axis = c.horizontal
      ? svg("line", { class: "axis", x1: b0, x2: b0, y1: 0, y2: plotH })
      : svg("line", { class: "axis", x1: 0, x2: plotW, y1: b0, y2: b0 });

    // Axis titles.
    if (c.horizontal) {
      g.append(svg("text", { class: "axis-title", x: plotW / 2, y: plotH + 36, "text-anchor": "middle" }, truncate(valTitle, 40)));
    } else {
      g.append(svg("text", { class: "axis-title", x: -left + 4, y: -14, "text-anchor": "start" }, truncate(valTitle, 40)));
      if (!rotate) {
        g.append(svg("text", { class: "axis-title", x: plotW / 2, y: plotH + 38, "text-anchor": "middle" }, truncate(catTitle, 40)));
      }
    }

    // Marks.
    const marks = svg("g", { class: `marks marks-${c.mark}` });
    const tip = (p) => `${typeof p.c === "number" ? tickLabel(p.c, 0.01) : p.c}: ${fmt.format(p.v)}`;
    if (c.mark === "bar") {
      const thick = catNames.length ? Math.max(1, Math.min(64, band * 0.7)) : Math.max(2, Math.min(24, plotW / c.points.length * 0.7));
      for (const p of c.points) {
        const at = cpos(p.c) - thick / 2;
        const v = vpos(p.v);
        const r = c.horizontal
          ? svg("rect", { class: "bar", x: Math.min(b0, v), y: at, width: Math.max(0.5, Math.abs(v - b0)), height: thick, rx: 3 })
          : svg("rect", { class: "bar", x: at, y: Math.min(b0, v), width: thick, height: Math.max(0.5, Math.abs(v - b0)), rx: 3 });
        r.append(svg("title", {}, tip(p)));
        marks.append(r);
      }
    } else {
      const pts = c.points.map((p) => [cpos(p.c), vpos(p.v), p]);
      if (c.mark === "line") {
        marks.append(svg("polyline", { class: "line", points: pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ") }));
      }
      for (const [x, y, p] of pts) {
        const dot = svg("circle", { class: c.mark === "line" ? "dot dot-line" : "dot", cx: x.toFixed(1), cy: y.toFixed(1), r: c.mark === "line" ? 3.5 : 4.5 });
        dot.append(svg("title", {}, tip(p)));
        marks.append(dot);
      }
    }
    g.append(axis, marks);
    holder.replaceChildren(root);
    return true;
  }

  // Charts redraw at their holder's width (a phone, a resized window).
  const charts = new Map();
  const resize = typeof ResizeObserver === "function"
    ? new ResizeObserver((entries) => {
      for (const entry of entries) {
        const spec = charts.get(entry.target);
        const w = Math.floor(entry.contentRect.width);
        if (spec && w && w !== entry.target.dataset.drawnAt) {
          entry.target.dataset.drawnAt = String(w);
          drawChart(entry.target, spec);
        }
      }
    })
    : null;
  function mountChart(holder, spec) {
    if (!drawChart(holder, spec)) { holder.hidden = true; return false; }
    holder.hidden = false;
    charts.set(holder, spec);
    if (resize) { resize.observe(holder); }
    return true;
  }

  // ---- the thread -------------------------------------------------------------------
  // Follow-up questions: the first question of a thread asks for a new session
  // ("new"), the next ones send back the id the answer carried. A server without
  // sessions (422 naming the field) gets plain questions from then on.
  let session = null;
  let sessions = true;
  function resetThread() {
    for (const holder of charts.keys()) { if (resize) { resize.unobserve(holder); } }
    charts.clear();
    session = null;
    $("thread").replaceChildren();
    $("empty").hidden = false;
    $("new-thread").hidden = true;
    setStatus("");
  }

  // One turn: the question and the pieces of its answer, filled as events arrive.
  function newTurn(question, kind) {
    const li = el("li", `turn turn-${kind}`);
    const q = el("div", "turn-q");
    q.append(el("span", "who-tag", kind === "sql" ? "SQL" : "You"));
    q.append(el(kind === "sql" ? "pre" : "p", "question", question));
    const a = el("div", "turn-a card");
    const head = el("div", "turn-head");
    const badge = el("span", "badge");
    badge.hidden = true;
    const meta = el("span", "turn-meta", kind === "sql" ? "Running…" : "Thinking…");
    meta.classList.add("pending");
    head.append(badge, meta);
    const summary = el("p", "summary");
    summary.hidden = true;
    const sqlBox = el("div", "sql-block");
    sqlBox.hidden = true;
    const code = el("pre", "sql-code");
    const copy = el("button", "btn btn-small copy-sql", "Copy SQL");
    copy.type = "button";
    copy.addEventListener("click", async () => {
      const ok = await copyText(code.textContent);
      flash(copy, ok ? "Copied" : "Copy failed");
    });
    sqlBox.append(code, copy);
    const violations = el("ul", "violations");
    const chart = el("div", "chart");
    chart.hidden = true;
    const scroller = el("div", "table-scroll");
    scroller.hidden = true;
    scroller.tabIndex = 0;
    scroller.setAttribute("role", "region");
    scroller.setAttribute("aria-label", "Result rows");
    const actions = el("div", "turn-actions");
    actions.hidden = true;
    const csv = el("button", "btn btn-small csv", "Download CSV");
    csv.type = "button";
    actions.append(csv);
    a.append(head, summary, sqlBox, violations, chart, scroller, actions);
    li.append(q, a);
    $("thread").append(li);
    $("empty").hidden = true;
    $("new-thread").hidden = false;

    const turn = {
      li, result: { columns: [], rows: [] },
      sql(text) {
        code.textContent = text || "";
        sqlBox.hidden = !text;
      },
      verdict(v) {
        if (!v) { return; }
        badge.hidden = false;
        badge.className = `badge ${v.allowed ? "ok" : "bad"} verdict`;
        badge.textContent = v.allowed ? "Allowed" : "Refused";
        violations.replaceChildren();
        for (const x of v.violations || []) {
          const item = el("li");
          item.append(el("code", "", x.code), " " + (x.message || ""));
          if (x.position) { item.append(` (line ${x.position.line}, col ${x.position.col})`); }
          violations.append(item);
        }
      },
      rows(columns, rows) {
        if (!columns || !columns.length) { return; }
        turn.result = { columns, rows: rows || [] };
        scroller.replaceChildren(buildTable(columns, rows || []));
        scroller.hidden = false;
        actions.hidden = false;
      },
      summary(text) {
        summary.textContent = text || "";
        summary.hidden = !text;
      },
      chart(spec) { if (spec) { mountChart(chart, spec); } },
      meta(text, pending) {
        meta.textContent = text;
        meta.classList.toggle("pending", !!pending);
      },
      error(text) {
        meta.textContent = text;
        meta.classList.remove("pending");
        meta.classList.add("error");
      },
    };
    csv.addEventListener("click", () => downloadCsv(turn.result.columns, turn.result.rows, question));
    li.scrollIntoView({ block: "nearest" });
    return turn;
  }

  function problemText(problem) {
    return `${problem.title || "Error"}${problem.detail ? `: ${problem.detail}` : ""}`;
  }
  function rowCount(n, truncated) {
    return `${n} row${n === 1 ? "" : "s"}${truncated ? " (cut at the row cap)" : ""}`;
  }

  // A WHATWG-style SSE parser over a fetch() body (EventSource cannot POST).
  async function* sseEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    let event = "";
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) { return; }
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length) { yield { event: event || "message", data: data.join("\n"), id }; }
          data = []; event = "";
          continue;
        }
        if (line.startsWith(":")) { continue; }
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) { val = val.slice(1); }
        if (field === "data") { data.push(val); }
        else if (field === "event") { event = val; }
        else if (field === "id" && !val.includes("\0")) { id = val; }
      }
    }
  }

  function finishAnswer(turn, payload) {
    if (payload.sql) { turn.sql(payload.sql); }
    if (payload.verdict) { turn.verdict(payload.verdict); }
    if (payload.columns && payload.columns.length) { turn.rows(payload.columns, payload.rows); }
    const details = payload.details || {};
    const sid = payload.session ?? details.session;
    if (typeof sid === "string" && sid) { session = sid; }
    const summary = payload.summary ?? details.summary ?? "";
    if (payload.chart) { turn.chart(payload.chart); }
    if (payload.abstained || details.outcome === "abstained") {
      // The summary (or the writer's reason) says why; the status line stays short.
      const reason = details.reason || payload.reason || "";
      turn.summary(summary || (reason ? `Why: ${reason}` : ""));
      turn.error("Cannot answer from this database");
      return;
    }
    turn.summary(summary);
    if (payload.error) { turn.error(`No result: ${payload.error}`); return; }
    const t = details.timings && typeof details.timings === "object" ? Object.values(details.timings).reduce((s, x) => s + (Number(x) || 0), 0) : 0;
    turn.meta(`${rowCount((payload.rows || []).length, details.truncated)}${t ? ` · ${t.toFixed(2)} s` : ""}`);
    turn.li.scrollIntoView({ block: "start" });
  }

  function postQuestion(question, withSession) {
    const body = { question };
    if (withSession) { body.session = session || "new"; }
    return call(api("v1/ask"), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(body),
    });
  }

  async function ask(question) {
    setStatus("");
    const turn = newTurn(question, "ask");
    let response = await postQuestion(question, sessions);
    if (sessions && response.status === 422) {
      const problem = await response.clone().json().catch(() => ({}));
      if (/\bsession\b/.test(String(problem.detail || ""))) {
        sessions = false;
        session = null;
        response = await postQuestion(question, false);
      }
    }
    showLimits(response);
    if (!response.ok) {
      const problem = await response.json();
      if (problem.status === 401) { turn.error("Sign in to ask"); needCredentials(problem); return; }
      turn.error(problemText(problem));
      if (problem.violations) { turn.verdict({ allowed: false, violations: problem.violations }); }
      return;
    }
    let answered = false;
    for await (const ev of sseEvents(response)) {
      let payload = {};
      try { payload = JSON.parse(ev.data); } catch (e) { payload = { text: ev.data }; }
      switch (ev.event) {
        case "retrieved": turn.meta("Reading the schema…", true); break;
        case "prompt": turn.meta("Writing SQL…", true); break;
        case "sql": turn.sql(payload.sql || ""); turn.meta("Checking the SQL…", true); break;
        case "verdict": turn.verdict(payload.verdict || payload); turn.meta("Running…", true); break;
        case "rows": turn.rows(payload.columns, payload.rows); break;
        case "answer": answered = true; finishAnswer(turn, payload); break;
        case "error": turn.error(`Error: ${payload.detail || payload.message || ev.data}`); answered = true; break;
        case "done": loadHistory(); break;
        default: break;
      }
    }
    if (!answered) { turn.error("The answer stream ended early"); }
  }

  async function runSql(sql) {
    const turn = newTurn(sql, "sql");
    turn.sql(sql);
    const response = await call(api("v1/sql/run"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql }),
    });
    showLimits(response);
    const body = await response.json();
    if (!response.ok) {
      if (body.status === 401) { turn.error("Sign in to run SQL"); needCredentials(body); return; }
      turn.error(problemText(body));
      if (body.violations) { turn.verdict({ allowed: false, violations: body.violations }); }
      loadHistory();
      return;
    }
    turn.verdict(body.verdict);
    if (body.verdict && body.verdict.sql) { turn.sql(body.verdict.sql); }
    turn.rows(body.columns, body.rows);
    turn.meta(rowCount(body.row_count));
    loadHistory();
  }

  async function checkSql(sql) {
    const box = $("verdict");
    const list = $("violations");
    showVerdict(box, list, null);
    box.textContent = "Checking…";
    const response = await call(api("v1/sql/check"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql }),
    });
    showLimits(response);
    const body = await response.json();
    if (!response.ok) {
      box.textContent = "";
      if (body.status === 401) { needCredentials(body); return; }
      if (body.violations) { showVerdict(box, list, { allowed: false, violations: body.violations }); return; }
      box.textContent = problemText(body);
      return;
    }
    showVerdict(box, list, body);
  }

  async function loadHistory() {
    const q = $("history-q").value.trim();
    const url = new URL(api("v1/history"));
    if (q) { url.searchParams.set("q", q); }
    url.searchParams.set("limit", "50");
    const response = await call(url);
    const list = $("history");
    list.replaceChildren();
    if (!response.ok) { return; }
    const page = await response.json();
    showRecent(q ? null : page.items);
    for (const entry of page.items) {
      if (entry.outcome === "pending") { continue; }  // written before the model is called
      const li = el("li");
      const button = el("button", "history-item");
      button.type = "button";
      button.append(el("span", "q", entry.question || entry.sql));
      const n = entry.row_count;
      const outcome = el("span", `meta outcome-${slug(entry.outcome)}`,
        `${entry.outcome}${n !== null && n !== undefined ? ` · ${n} row${n === 1 ? "" : "s"}` : ""}`);
      button.append(outcome);
      button.title = entry.question || entry.sql || "";
      button.addEventListener("click", () => {
        if (entry.question) { $("question").value = entry.question; $("question").focus(); }
        $("sql").value = entry.sql || "";
      });
      li.append(button);
      list.append(li);
    }
  }

  // The empty thread offers the caller's own recent questions (answered ones) again.
  function showRecent(items) {
    if (!items) { return; }
    const seen = new Set();
    const box = $("examples");
    box.replaceChildren();
    for (const entry of items) {
      const q = (entry.question || "").trim();
      if (!q || entry.outcome !== "ok" || seen.has(q)) { continue; }
      seen.add(q);
      const b = el("button", "btn btn-chip example", q.length > 90 ? q.slice(0, 89) + "…" : q);
      b.type = "button";
      b.title = q;
      b.addEventListener("click", () => { $("question").value = q; submitQuestion(); });
      box.append(b);
      if (seen.size === 3) { break; }
    }
    $("recent").hidden = seen.size === 0;
  }

  // ---- wiring -----------------------------------------------------------------------
  let asking = false;
  function submitQuestion() {
    const question = $("question").value.trim();
    if (!question || asking) { return; }
    asking = true;
    $("ask-button").disabled = true;
    $("question").value = "";
    ask(question)
      .catch((err) => setStatus(`Error: ${err}`))
      .finally(() => { asking = false; $("ask-button").disabled = false; });
  }
  $("ask-form").addEventListener("submit", (e) => { e.preventDefault(); submitQuestion(); });
  $("question").addEventListener("keydown", (e) => {
    // Enter asks; Shift+Enter is a new line; Enter while an IME composes is the IME's.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitQuestion();
    }
  });
  $("new-thread").addEventListener("click", () => { resetThread(); $("question").focus(); });
  $("sql-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const sql = $("sql").value.trim();
    if (!sql) { return; }
    runSql(sql).catch((err) => setStatus(`Error: ${err}`));
  });
  $("check-button").addEventListener("click", () => {
    checkSql($("sql").value).catch((err) => setStatus(`Error: ${err}`));
  });
  $("history-form").addEventListener("submit", (e) => { e.preventDefault(); loadHistory(); });
  $("sign-out").addEventListener("click", signOut);
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) { return; }
    window.sessionStorage.setItem(KEY, key);
    $("api-key").value = "";
    setStatus("");
    loadCaller().catch((err) => setStatus(`Error: ${err}`));
    loadHistory();
  });
  loadCaller().catch(() => {});
  loadHistory();
})();
