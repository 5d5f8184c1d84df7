// karyotf review by case: list the cases, show one case's karyotype as its cells stand, accept it as a whole.
"use strict";
const $ = (id) => document.getElementById(id);
const TOKEN = document.querySelector('meta[name="karyotf-token"]').content;
const C = { cases: [], current: null, version: null, busy: false };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(path, body) {
  const opt = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Karyotf-Token": TOKEN },
  };
  const r = await fetch(path, opt);
  const data = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) { const e = new Error(data.error || r.statusText); e.status = r.status; throw e; }
  return data;
}

function badge(status) {
  const cls = status === "accepted" ? "accepted" : status === "to review" ? "to-review" : "changed";
  return el("span", status, "badge " + cls);
}

function renderList() {
  const ol = $("case-list");
  ol.replaceChildren();
  for (const c of C.cases) {
    const li = el("li");
    const b = el("button");
    b.type = "button";
    b.setAttribute("aria-current", String(c.id === C.current));
    b.append(el("b", c.id), " ", badge(c.status), el("span", `${c.text} \u00b7 ${c.cells} cell(s)`, "kt"));
    b.addEventListener("click", () => openCase(c.id));
    li.append(b);
    ol.append(li);
  }
  const done = C.cases.filter((c) => c.status === "accepted").length;
  $("progress").textContent = `${done} / ${C.cases.length} cases accepted`;
}

function message(text, kind) {
  const m = $("case-message");
  m.textContent = text;
  m.className = kind ? "msg-" + kind : "";
}

function renderCase(d) {
  $("case-name").textContent = `case ${d.id}`;
  $("case-karyotype").textContent = d.text;
  const st = $("case-status");
  st.replaceChildren(badge(d.status));
  if (d.review) st.append(` accepted by ${d.review.reviewer} at ${d.review.reviewed_at} (revision ${d.review.revision})`
    + (d.review.karyotype !== d.karyotype ? `: then ${d.review.text}` : ""));
  const fl = $("case-flags");
  fl.replaceChildren();
  for (const f of d.flags) fl.append(el("li", `${f.code}: ${f.message}`));
  if (!d.flags.length) fl.append(el("li", "none"));
  const nc = new Map(d.non_clonal.map((x) => [x.cell, x.reason]));
  const out = new Map(d.uncounted.map((x) => [x.cell, x.reason]));
  const tb = $("case-cells").querySelector("tbody");
  tb.replaceChildren();
  for (const c of d.cells) {
    const tr = el("tr");
    const a = el("a", c.cell);
    a.href = "/#" + encodeURIComponent(c.review_id);
    a.target = "_blank";
    const joins = c.line ? "line " + c.line : out.has(c.cell) ? "not counted: " + out.get(c.cell)
      : "non-clonal: " + (nc.get(c.cell) || "");
    if (!c.line) tr.className = out.has(c.cell) ? "off" : "nc";
    const td = el("td");
    td.append(a);
    tr.append(td, el("td", c.text), el("td", c.status), el("td", joins), el("td", c.flags.join(", ")));
    tb.append(tr);
  }
  const n = d.counts;
  $("case-counts").textContent = `${n.counted} counted (standard ${n.standard_counted}), ${n.analysed} analysed `
    + `(standard ${n.standard_analysed}), ${n.uncounted} not counted, ${n.non_clonal} non-clonal`;
  if (d.review && $("case-comment").value === "") $("case-comment").value = d.review.comment || "";
}

async function loadList() {
  const data = await api("/api/cases");
  C.cases = data.cases;
  renderList();
}

async function openCase(id) {
  const d = await api("/api/cases/" + encodeURIComponent(id));
  if (C.current !== id) $("case-comment").value = "";
  C.current = id;
  C.version = d.version;
  history.replaceState(null, "", "#" + encodeURIComponent(id));
  renderCase(d);
  renderList();
  document.body.dataset.version = d.version;
}

async function refresh() {
  if (C.busy) return;
  try {
    await loadList();
    if (C.current) await openCase(C.current);
  } catch (e) { message(e.message, "error"); }
}

async function acceptCase() {
  if (!C.current || C.busy) return;
  C.busy = true;
  $("accept-case").disabled = true;
  try {
    const d = await api("/api/cases/" + encodeURIComponent(C.current) + "/accept",
      { version: C.version, comment: $("case-comment").value });
    C.version = d.version;
    renderCase(d);
    await loadList();
    message(`Accepted: ${d.text}`, "ok");
    document.body.dataset.saved = d.version;
  } catch (e) {
    message((e.status === 409 ? "Not saved. " : "Not saved: ") + e.message, "error");
  } finally {
    C.busy = false;
    $("accept-case").disabled = false;
  }
}

async function start() {
  $("accept-case").addEventListener("click", acceptCase);
  window.addEventListener("focus", refresh);
  setInterval(refresh, 15000);
  try { await loadList(); } catch (e) { message(e.message, "error"); return; }
  const want = decodeURIComponent(location.hash.slice(1));
  const first = C.cases.find((c) => c.id === want) || C.cases.find((c) => c.status !== "accepted") || C.cases[0];
  if (first) await openCase(first.id);
  document.body.dataset.ready = "1";
}

start();
