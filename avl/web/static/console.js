// avl console page: no framework, no build step. Talks to the JSON API next to it.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const base = new URL(".", window.location.href);
  const api = (path) => new URL(path, base).toString();

  function setStatus(text) { $("status").textContent = text; }

  // Credentials: none on loopback without an authenticator; otherwise an API key or a
  // JWT, kept for this tab only and sent as a bearer token (the server accepts both).
  const KEY = "avl.credentials";
  function authHeaders(extra) {
    const key = window.sessionStorage.getItem(KEY);
    return key ? { ...extra, authorization: `Bearer ${key}` } : { ...extra };
  }
  function call(url, init) {
    return fetch(url, { ...(init || {}), headers: authHeaders((init || {}).headers) });
  }
  function needCredentials(problem) {
    $("key-form").hidden = false;
    $("api-key").focus();
    setStatus(`Sign in: ${(problem && problem.detail) || "credentials required"}`);
  }

  function showVerdict(verdict) {
    const box = $("verdict");
    const list = $("violations");
    list.replaceChildren();
    if (!verdict) { box.textContent = ""; box.className = ""; return; }
    box.className = verdict.allowed ? "allowed" : "refused";
    box.textContent = verdict.allowed ? "Allowed" : "Refused";
    for (const v of verdict.violations || []) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = v.code;
      li.append(code, " " + v.message);
      if (v.position) { li.append(` (line ${v.position.line}, col ${v.position.col})`); }
      list.append(li);
    }
  }

  function showRows(columns, rows) {
    const thead = $("rows").tHead;
    const tbody = $("rows").tBodies[0];
    thead.replaceChildren();
    tbody.replaceChildren();
    if (!columns || !columns.length) { return; }
    const head = document.createElement("tr");
    for (const c of columns) { const th = document.createElement("th"); th.textContent = c; head.append(th); }
    thead.append(head);
    for (const row of rows || []) {
      const tr = document.createElement("tr");
      for (const cell of row) {
        const td = document.createElement("td");
        td.textContent = cell === null ? "NULL" : String(cell);
        tr.append(td);
      }
      tbody.append(tr);
    }
  }

  function showProblem(problem) {
    if (problem.status === 401) { needCredentials(problem); return; }
    setStatus(`${problem.title || "Error"}: ${problem.detail || ""}`);
    if (problem.violations) { showVerdict({ allowed: false, violations: problem.violations }); }
  }

  function showLimits(response) {
    const h = (name) => response.headers.get(name) ?? response.headers.get("x-" + name);
    const remaining = h("ratelimit-remaining");
    const limit = h("ratelimit-limit");
    if (remaining !== null) { $("limits").textContent = `rate limit: ${remaining}/${limit || "?"} left`; }
  }

  async function loadCaller() {
    const response = await call(api("v1/ratelimit"));
    if (response.status === 401) { needCredentials(await response.json()); return; }
    if (!response.ok) { return; }
    $("key-form").hidden = true;
    const status = await response.json();
    $("who").textContent = `signed in as ${status.key.replace(/^web:/, "")}`;
    if (status.limited && status.remaining !== null) {
      $("limits").textContent = `rate limit: ${status.remaining}/${status.limit ?? "?"} left`;
    }
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

  async function ask(question) {
    setStatus("Asking…");
    showVerdict(null);
    showRows([], []);
    $("sql").value = "";
    const response = await call(api("v1/ask"), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ question }),
    });
    showLimits(response);
    if (!response.ok) { showProblem(await response.json()); return; }
    for await (const ev of sseEvents(response)) {
      let payload = {};
      try { payload = JSON.parse(ev.data); } catch (e) { payload = { text: ev.data }; }
      switch (ev.event) {
        case "retrieved": setStatus("Retrieved context…"); break;
        case "prompt": setStatus("Asking the model…"); break;
        case "sql": $("sql").value = payload.sql || ""; setStatus("Checking the SQL…"); break;
        case "verdict": showVerdict(payload.verdict || payload); break;
        case "rows": showRows(payload.columns, payload.rows); break;
        case "answer":
          if (payload.sql) { $("sql").value = payload.sql; }
          if (payload.verdict) { showVerdict(payload.verdict); }
          if (payload.columns && payload.columns.length) { showRows(payload.columns, payload.rows); }
          if (payload.abstained) { setStatus(`Cannot answer from this database: ${payload.reason}`); break; }
          setStatus(payload.error ? `No result: ${payload.error}` : `${(payload.rows || []).length} row(s)`);
          break;
        case "error": setStatus(`Error: ${payload.detail || payload.message || ev.data}`); break;
        case "done": loadHistory(); break;
        default: break;
      }
    }
  }

  async function runSql(sql, checkOnly) {
    setStatus(checkOnly ? "Checking…" : "Running…");
    showVerdict(null);
    showRows([], []);
    const response = await call(api(checkOnly ? "v1/sql/check" : "v1/sql/run"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql }),
    });
    showLimits(response);
    const body = await response.json();
    if (!response.ok) {
      showProblem(body);
      if (!checkOnly) { loadHistory(); }
      return;
    }
    if (checkOnly) { showVerdict(body); setStatus(""); return; }
    showVerdict(body.verdict);
    showRows(body.columns, body.rows);
    setStatus(`${body.row_count} row(s)`);
    loadHistory();
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
    for (const entry of page.items) {
      if (entry.outcome === "pending") { continue; }  // written before the model is called
      const li = document.createElement("li");
      const q1 = document.createElement("span");
      q1.className = "q";
      q1.textContent = entry.question || entry.sql;
      const meta = document.createElement("span");
      meta.className = "meta";
      const n = entry.row_count;
      meta.textContent = `${entry.outcome}${n !== null ? `, ${n} row${n === 1 ? "" : "s"}` : ""}`;
      li.title = entry.question || entry.sql || "";
      li.append(q1, meta);
      li.addEventListener("click", () => { $("question").value = entry.question || ""; $("sql").value = entry.sql || ""; });
      list.append(li);
    }
  }

  $("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const question = $("question").value.trim();
    if (!question) { return; }
    $("ask-button").disabled = true;
    ask(question)
      .catch((err) => setStatus(`Error: ${err}`))
      .finally(() => { $("ask-button").disabled = false; });
  });
  $("sql-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runSql($("sql").value, false).catch((err) => setStatus(`Error: ${err}`));
  });
  $("check-button").addEventListener("click", () => {
    runSql($("sql").value, true).catch((err) => setStatus(`Error: ${err}`));
  });
  $("history-form").addEventListener("submit", (e) => { e.preventDefault(); loadHistory(); });
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
