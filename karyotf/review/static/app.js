/* karyotf review: plain JS, no build step, no library.  The count call is never computed here: every edit asks
   the server (POST /api/call), which runs karyotf.karyogram.call.count_call, the one implementation. */
"use strict";

const NAMES = Array.from({length: 22}, (_, i) => String(i + 1)).concat(["X", "Y"]);
const ORDER = Object.fromEntries(NAMES.map((n, i) => [n, i]));
const TOKEN = document.querySelector('meta[name="karyotf-token"]').content;
let TILE_SCALE = 0.5;            // karyogram.png pixels -> screen pixels, fitted to the pane in renderKaryogram
const DIGIT_WAIT_MS = 700;       // after 1 or 2, wait this long for a second digit (10-22)
const $ = (id) => document.getElementById(id);

const S = {
  cells: [], cellId: null, cell: null, boxes: [], selected: null, resolved: new Set(), comment: "",
  undo: [], dirty: false, call: null, callSeq: 0, drafts: {}, nextUid: 1, karyImg: null, metaImg: null,
  digitBuf: "", digitTimer: null, busy: false,
  view: null,                    // the metaphase region shown, [x, y, w, h] in image pixels (null: the whole image)
  splits: [],                    // split lines: {uids: [uid] or [uid, uid], line: [[x, y], ...]} (image pixels)
  showMasks: false, splitMode: false, masks: null, masksKey: null, masksSeq: 0,
};
const ZOOM_STEP = 1.25;          // one wheel notch or +/- key
const MIN_VIEW = 48;             // the narrowest region shown (image pixels): about 8x on a CIL cell
const LABEL_PX = 13;             // box labels and stroke stay this size on screen at any zoom
const MAX_TILE_SCALE = 2.5;      // karyogram cut-outs are enlarged to fill their pane up to this factor
const READABLE_PX = 40;          // ... and never shown smaller than this for the small ones (19-22, Y: median
                                 // height on screen); the rows then wrap and the pane scrolls

// ------------------------------------------------------------------------------------------ server
async function api(method, url, body) {
  const opts = {method, headers: {}};
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.headers["X-Karyotf-Token"] = TOKEN;
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = {error: `HTTP ${r.status}`}; }
  if (!r.ok) { const err = new Error(data.error || `HTTP ${r.status}`); err.status = r.status; throw err; }
  return data;
}

function message(text, kind) {
  const m = $("msg");
  m.textContent = text || "";
  m.className = kind || "";
}

// ------------------------------------------------------------------------------------------ cells
async function loadList() {
  const data = await api("GET", "/api/cells");
  S.cells = data.cells;
  renderList();
}

function renderList() {
  const ol = $("cell-list");
  ol.textContent = "";
  let done = 0;
  for (const c of S.cells) {
    if (c.status !== "to review") done++;
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.cell = c.id;
    if (c.id === S.cellId) b.setAttribute("aria-current", "true");
    const draft = S.drafts[c.id];
    const edited = (c.id === S.cellId ? S.dirty : draft && draft.dirty);
    const st = edited ? "edited" : c.status;
    b.innerHTML = `<span class="name"></span><span class="badge ${st.replace(" ", "-")}">${st}</span>` +
                  `<span class="ccall"></span>`;
    b.querySelector(".name").textContent = c.name;
    b.querySelector(".ccall").textContent = (c.call || "no call") + (c.review ? ` \u00b7 ${c.review} to review` : "") +
      (c.flags ? ` \u00b7 ${c.flags} flag(s)` : "");
    b.title = c.error || (c.reviewer ? `reviewed by ${c.reviewer} at ${c.reviewed_at}` : "");
    b.addEventListener("click", () => openCell(c.id));
    li.appendChild(b);
    ol.appendChild(li);
  }
  $("progress").textContent = `${done} of ${S.cells.length} reviewed`;
}

function saveDraft() {
  if (!S.cellId) return;
  S.drafts[S.cellId] = {boxes: S.boxes, resolved: S.resolved, comment: $("comment").value, undo: S.undo,
                        dirty: S.dirty, version: S.cell && S.cell.version, splits: S.splits};
}

async function openCell(id, {keepDraft = true} = {}) {
  saveDraft();
  let cell;
  try {
    cell = await api("GET", "/api/cells/" + encodeURIComponent(id));
  } catch (e) {
    message(e.message, "error");
    return;
  }
  if (S.cellId !== id) S.view = null;
  S.cellId = id;
  S.cell = cell;
  S.selected = null;
  S.masks = null; S.masksKey = null;
  const draft = keepDraft ? S.drafts[id] : null;
  let stale = false;
  if (draft && (draft.version === cell.version || draft.dirty)) {
    // unsaved edits are never dropped: made on an older version, they keep it, and accepting them gets the 409
    stale = draft.version !== cell.version;
    cell.version = draft.version;
    Object.assign(S, {boxes: draft.boxes, resolved: draft.resolved, undo: draft.undo, dirty: draft.dirty,
                      splits: draft.splits || []});
    $("comment").value = draft.comment;
  } else {
    fromServer(cell);
  }
  history.replaceState(null, "", "#" + encodeURIComponent(id));
  if (stale) message("This cell was accepted elsewhere after you began editing it here: R reloads it.", "error");
  else message(cell.image_error || (cell.review ? reviewedLine(cell) : ""), cell.image_error ? "error" : "ok");
  $("cell-name").textContent = `${cell.name} \u00b7 ${describeSource(cell.source)}`;
  setLinks(cell);
  await loadImages(cell);
  renderAll();
  renderList();
  if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  await refreshCall();
  document.body.dataset.cell = id;   // the cell is on screen with its call (scripts and tests wait for this)
}

function fromServer(cell) {
  S.boxes = cell.boxes.map((b) => ({uid: S.nextUid++, cls: b.class, box: b.box.slice(), score: b.score,
                                    origin: b.origin, kbox: b.kbox}));
  S.resolved = new Set(cell.review ? cell.review.resolved_flags : []);
  // the reviewed split lines, on the reviewed boxes' indices (the order the server lists them in)
  const stored = (cell.review && cell.review.changes && cell.review.changes.split) || [];
  S.splits = stored.map((sp) => ({uids: sp.chromosomes.map((i) => S.boxes[i].uid), line: sp.line}));
  $("comment").value = cell.review ? cell.review.comment : "";
  S.undo = [];
  S.dirty = false;
}

function setLinks(cell) {
  $("link-model").href = cell.original_karyogram;
  $("link-reviewed").href = cell.karyogram;
  $("link-reviewed").hidden = !cell.review;
}

function describeSource(src) {
  if (!src || !src.kind) return "";
  if (src.kind === "model") return `model ${src.model || src.from || ""}`;
  return `boxes from ${src.kind}`;
}

function reviewedLine(cell) {
  const r = cell.review;
  return `reviewed by ${r.reviewer} at ${r.reviewed_at} (revision ${r.revision})`;
}

function loadImage(url) {
  return new Promise((resolve) => {
    if (!url) { resolve(null); return; }
    const im = new Image();
    im.onload = () => resolve(im);
    im.onerror = () => resolve(null);
    im.src = url + "?v=" + encodeURIComponent(S.cell.version);
  });
}

async function loadImages(cell) {
  const [meta, kary] = await Promise.all([loadImage(cell.image), loadImage(cell.karyogram)]);
  S.metaImg = meta;
  S.karyImg = kary;
  $("metaphase").src = meta ? meta.src : "";
}

// ------------------------------------------------------------------------------------------ edits
function original(b) {
  return b.origin !== null && b.origin !== undefined ? S.cell.original.boxes[b.origin] : null;
}

function kind(b) {
  if (b.cls === null) return "pending";
  const o = original(b);
  if (!o) return "new";
  if (o.class !== b.cls) return "changed";
  return "";
}

function snapshot() {
  S.undo.push({boxes: S.boxes.map((b) => ({...b, box: b.box.slice()})), resolved: new Set(S.resolved),
               selected: S.selected, splits: S.splits.slice()});
  if (S.undo.length > 200) S.undo.shift();
  S.dirty = true;
}

function changed(recall = true) {
  renderAll();
  if (recall) refreshCall();
  renderList();
}

function byUid(uid) { return S.boxes.find((b) => b.uid === uid); }

function setClass(uid, cls) {
  const b = byUid(uid);
  if (!b || b.cls === cls) return;
  snapshot();
  b.cls = cls;
  changed();
}

function deleteBox(uid) {
  const b = byUid(uid);
  if (!b) return;
  const order = ordered();
  const i = order.indexOf(b);
  snapshot();
  S.boxes = S.boxes.filter((x) => x.uid !== uid);
  const next = order[i + 1] || order[i - 1];
  S.selected = next && next.uid !== uid ? next.uid : null;
  changed();
}

function addBox(box) {
  snapshot();
  const b = {uid: S.nextUid++, cls: null, box, score: null, origin: null, kbox: null};
  S.boxes.push(b);
  S.selected = b.uid;
  changed(false);
  message("New box: type its class (1-22, X, Y) or drag it to a slot.", "");
}

function restoreNext() {
  const gs = S.cell.not_counted || [];
  const i = gs.findIndex((g) => !S.boxes.some((b) => sameBox(b.box, g.box)));
  if (i < 0) { message("No detection left that the model did not count.", ""); return; }
  restore(i);
}

function restore(i) {
  // a detection the model did not count (NMS, low score) becomes a box with the model's class
  const g = S.cell.not_counted[i];
  snapshot();
  const b = {uid: S.nextUid++, cls: g.class, box: g.box.slice(), score: null, origin: null, kbox: null};
  S.boxes.push(b);
  S.selected = b.uid;
  changed();
  message(`Restored a ${g.class} the model did not count (${g.why.replace(/_/g, " ")}).`, "ok");
}

function nudge(uid, dx, dy, dw, dh) {
  const b = byUid(uid);
  if (!b) return;
  const W = S.cell.width, H = S.cell.height;
  const [x0, y0, x1, y1] = b.box;
  let nx0 = x0 + dx, ny0 = y0 + dy, nx1 = x1 + dx + dw, ny1 = y1 + dy + dh;
  if (nx1 - nx0 < 4 || ny1 - ny0 < 4 || nx0 < 0 || ny0 < 0 || nx1 > W || ny1 > H) return;
  snapshot();
  b.box = [nx0, ny0, nx1, ny1];
  b.kbox = original(b) && sameBox(original(b).box, b.box) ? original(b).kbox : null;
  changed();
}

function sameBox(a, b) { return a.every((v, i) => Math.abs(v - b[i]) < 1e-6); }

function undo() {
  const s = S.undo.pop();
  if (!s) { message("Nothing to undo.", ""); return; }
  S.boxes = s.boxes;
  S.resolved = s.resolved;
  S.selected = s.selected;
  S.splits = s.splits || [];
  S.dirty = S.undo.length > 0;
  changed();
}

function ordered() {
  const key = (b) => (b.cls === null ? 99 : ORDER[b.cls]);
  return S.boxes.slice().sort((a, b) => key(a) - key(b) || (a.box[0] + a.box[2]) - (b.box[0] + b.box[2]));
}

function step(delta) {
  const order = ordered();
  if (!order.length) return;
  const i = order.findIndex((b) => b.uid === S.selected);
  const j = i < 0 ? (delta > 0 ? 0 : order.length - 1) : (i + delta + order.length) % order.length;
  select(order[j].uid);
}

function select(uid) {
  S.selected = uid;
  showBox(byUid(uid));
  renderAll();
  const tile = document.querySelector(`canvas.tile[data-uid="${uid}"]`);
  if (tile) tile.scrollIntoView({block: "nearest", inline: "nearest"});
}

function toggleFlag(code, on) {
  snapshot();
  if (on) S.resolved.add(code); else S.resolved.delete(code);
  changed(false);
  renderCall();
}

function resolveNextFlag() {
  if (!S.call) return;
  const open = S.call.flags.find((f) => !S.resolved.has(f.code));
  if (!open) { message("No open flag.", ""); return; }
  toggleFlag(open.code, true);
  message(`Resolved: ${open.code}.`, "ok");
}

// ------------------------------------------------------------------------------------------ call
async function refreshCall() {
  const seq = ++S.callSeq;
  // a box keeps its model score only while it is the model's own (same class, same place), as on accept
  const own = (b) => kind(b) === "" && original(b) && sameBox(original(b).box, b.box);
  const boxes = S.boxes.filter((b) => b.cls !== null)
    .map((b) => ({class: b.cls, box: b.box, score: own(b) ? b.score : null}));
  try {
    const call = await api("POST", "/api/call", {cell: S.cellId, boxes});
    if (seq !== S.callSeq) return;      // a newer edit is on its way
    S.call = call;
    renderCall();
  } catch (e) {
    if (seq === S.callSeq) message(e.message, "error");
  }
}

// ------------------------------------------------------------------------------------------ render
function renderAll() {
  renderOverlay();
  renderKaryogram();
  renderSelection();
  $("undo").disabled = !S.undo.length;
  renderMaskView();
  if (S.showMasks) refreshMasks();
}

// ------------------------------------------------------------------------------------------ masks and split lines
// The masks are the server's (POST /api/cells/{id}/masks: karyotf.separate, the karyogram's own separation, with
// the split lines applied there): nothing about a mask is computed here.
function classed() { return ordered().filter((b) => b.cls !== null); }

function splitsOn(list) {
  // the split lines on the indices of `list` (a line whose chromosome was deleted is dropped)
  const at = new Map(list.map((b, i) => [b.uid, i]));
  return S.splits.filter((sp) => sp.uids.every((u) => at.has(u)))
    .map((sp) => ({chromosomes: sp.uids.map((u) => at.get(u)), line: sp.line}));
}

async function fetchMasks(splits) {
  const list = classed();
  const res = await api("POST", `/api/cells/${encodeURIComponent(S.cellId)}/masks`, {
    boxes: list.map((b) => ({class: b.cls, box: b.box})), splits: splits || splitsOn(list)});
  return res.masks.map((m) => ({...m, uid: list[m.index].uid}));
}

async function refreshMasks() {
  if (!S.cell) return;
  const key = JSON.stringify([classed().map((b) => [b.uid, b.cls, b.box]), S.splits]);
  if (key === S.masksKey) return;
  S.masksKey = key;
  const seq = ++S.masksSeq;
  try {
    const masks = await fetchMasks();
    if (seq !== S.masksSeq) return;
    S.masks = masks;
    renderOverlay();
    renderMaskView();
  } catch (e) {
    if (seq === S.masksSeq) { S.masksKey = null; message(`Masks: ${e.message}`, "error"); }
  }
}

function toggleMasks(on) {
  S.showMasks = on === undefined ? !S.showMasks : on;
  $("show-masks").setAttribute("aria-pressed", String(S.showMasks));
  if (S.showMasks) refreshMasks();
  renderOverlay();
  renderMaskView();
}

function toggleSplit(on) {
  S.splitMode = on === undefined ? !S.splitMode : on;
  $("split-mode").setAttribute("aria-pressed", String(S.splitMode));
  $("stage").classList.toggle("splitting", S.splitMode);
  if (S.splitMode) {
    toggleMasks(true);
    message(S.selected === null ? "Split mode: select a chromosome, then drag a line across it where it should be cut." :
      "Split mode: drag a line across the selected chromosome where it should be cut (\u201cbetween two\u201d: where " +
      "it parts from the neighbour the line also crosses). S or Esc ends.", "");
  }
}

function renderMaskView() {
  // the selected chromosome's cut-out, its mask over it while masks are shown
  const el = $("maskview");
  if (!el) return;
  el.textContent = "";
  const m = S.masks && S.showMasks && S.masks.find((x) => x.uid === S.selected);
  el.hidden = !m;
  if (!m) return;
  const fig = document.createElement("div");
  fig.className = "maskfig";
  for (const [src, cls] of [[m.cutout, "cut"], [m.mask, "over"]]) {
    const im = document.createElement("img");
    im.src = src; im.className = cls; im.alt = cls === "cut" ? "cut-out" : "mask";
    fig.appendChild(im);
  }
  el.appendChild(fig);
  const cap = document.createElement("div");
  cap.textContent = `${m.class}: ${m.area} px, ${m.method === "split" ? "split by you" : "mask: " + m.method}` +
    (m.uncertain ? ` \u2014 uncertain: ${m.uncertain}` : "");
  if (m.uncertain) cap.className = "unsure";
  el.appendChild(cap);
}

function boxHits(b, line) {
  const [x0, y0, x1, y1] = b.box;
  return line.filter(([x, y]) => x >= x0 && x <= x1 && y >= y0 && y <= y1).length;
}

async function addSplit(line) {
  const b = byUid(S.selected);
  if (!b || b.cls === null) { message("Split: select a classed chromosome first.", "error"); return; }
  const uids = [b.uid];
  if ($("split-pair").checked) {
    const other = S.boxes.filter((o) => o.uid !== b.uid && o.cls !== null)
      .map((o) => [boxHits(o, line), o]).filter(([n]) => n > 0).sort((p, q) => q[0] - p[0])[0];
    if (!other) { message("Split between two: the line crosses no other chromosome's box.", "error"); return; }
    uids.push(other[1].uid);
  }
  const sp = {uids, line: line.map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10])};
  const list = classed();
  try {   // the server checks the line and recomputes the masks; a bad line is refused with the reason
    const on = splitsOn(list);
    const at = new Map(list.map((x, i) => [x.uid, i]));
    on.push({chromosomes: sp.uids.map((u) => at.get(u)), line: sp.line});
    const masks = await fetchMasks(on);
    snapshot();
    S.splits.push(sp);
    S.masks = masks;
    S.masksKey = JSON.stringify([list.map((x) => [x.uid, x.cls, x.box]), S.splits]);
    changed(false);
    message(`Split ${uids.length === 2 ? "between two chromosomes" : "of chromosome " + b.cls} saved with ` +
            "the review on accept (Z undoes it).", "ok");
  } catch (e) {
    message(`Split refused: ${e.message}`, "error");
    renderOverlay();
  }
}

function renderCall() {
  const c = S.call;
  if (!c) return;
  const el = $("call");
  el.textContent = c.text;
  el.className = c.normal && !c.flags.length ? "ok" : "warn";
  const pending = S.boxes.filter((b) => b.cls === null).length;
  $("call-note").textContent = pending ? `${pending} new box(es) without a class are not counted yet` : "";
  const ul = $("flags");
  ul.textContent = "";
  if (!c.flags.length) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "No flags.";
    ul.appendChild(li);
  }
  for (const f of c.flags) {
    const li = document.createElement("li");
    const done = S.resolved.has(f.code);
    li.className = (done ? "resolved" : "open") + " " + (f.level || "review");  // review flags come first
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = done;
    box.dataset.code = f.code;
    box.addEventListener("change", () => toggleFlag(f.code, box.checked));
    const span = document.createElement("span");
    span.innerHTML = "<b></b>: ";
    span.querySelector("b").textContent = (f.level === "note" ? "note " : "review ") + f.code;
    span.appendChild(document.createTextNode(f.message));
    label.append(box, " ", span);
    li.appendChild(label);
    ul.appendChild(li);
  }
  const open = c.flags.filter((f) => !S.resolved.has(f.code)).length;
  $("accept").title = open ? `${open} flag(s) still open: the cell will be listed as flagged` : "";
}

function renderSelection() {
  const b = byUid(S.selected);
  const el = $("selection");
  if (!b) { el.textContent = S.boxes.length ? "Nothing selected (\u2192 selects the first chromosome)" : ""; return; }
  const o = original(b);
  let t = `Selected: ${b.cls === null ? "new box, no class yet" : "chromosome " + b.cls}`;
  if (o) t += ` (model: ${o.class}${o.score !== null && o.score !== undefined ? ", score " + o.score.toFixed(2) : ""})`;
  else if (b.cls !== null) t += " (drawn by you)";
  el.textContent = t + (S.digitBuf ? ` \u2014 typing ${S.digitBuf}\u2026` : "");
}

const SVGNS = "http://www.w3.org/2000/svg";

function renderOverlay() {
  const svg = $("overlay");
  if (!S.cell) return;
  const [vx, vy, vw, vh] = currentView();
  svg.setAttribute("viewBox", `${vx} ${vy} ${vw} ${vh}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  svg.textContent = "";
  if (S.metaImg) {   // the image is drawn inside the SVG, so that zoom and pan move image and boxes together
    const im = document.createElementNS(SVGNS, "image");
    im.setAttribute("href", S.metaImg.src);
    im.setAttribute("x", 0); im.setAttribute("y", 0);
    im.setAttribute("width", S.cell.width); im.setAttribute("height", S.cell.height);
    im.setAttribute("preserveAspectRatio", "none");
    im.setAttribute("class", "metaimg");
    svg.appendChild(im);
  }
  if (S.showMasks && S.masks) {   // each chromosome's mask as the karyogram draws it (the selected one stronger)
    for (const m of S.masks) {
      const b = byUid(m.uid);
      if (!b) continue;
      const im = document.createElementNS(SVGNS, "image");
      im.setAttribute("href", m.mask);
      im.setAttribute("x", m.origin[0]); im.setAttribute("y", m.origin[1]);
      im.setAttribute("width", m.size[0]); im.setAttribute("height", m.size[1]);
      im.setAttribute("preserveAspectRatio", "none");
      im.setAttribute("class", `mask${m.uid === S.selected ? " sel" : ""}${m.uncertain ? " unsure" : ""}`);
      svg.appendChild(im);
    }
  }
  for (const sp of S.splits) {
    const pl = document.createElementNS(SVGNS, "polyline");
    pl.setAttribute("points", sp.line.map((p) => p.join(",")).join(" "));
    pl.setAttribute("class", "splitline");
    svg.appendChild(pl);
  }
  const px = 1 / screenScale();                      // image pixels per screen pixel
  svg.style.setProperty("--fs", `${(LABEL_PX * px).toFixed(3)}px`);
  svg.style.setProperty("--halo", `${(3 * px).toFixed(3)}px`);
  renderZoom();
  const sel0 = S.boxes.filter((b) => b.uid === S.selected);
  for (const b of S.boxes.filter((x) => x.uid !== S.selected).concat(sel0)) {  // the selected one on top
    const [x0, y0, x1, y1] = b.box;
    const k = kind(b);
    const r = document.createElementNS(SVGNS, "rect");
    r.setAttribute("x", x0); r.setAttribute("y", y0);
    r.setAttribute("width", x1 - x0); r.setAttribute("height", y1 - y0);
    const sel = b.uid === S.selected ? " sel" : "";
    const isLow = b.score !== null && b.score !== undefined && S.cell.params && b.score < S.cell.params.low_score;
    r.setAttribute("class", `box ${k}${isLow && !k ? " low" : ""}${sel}`);
    r.dataset.uid = b.uid;
    r.dataset.cls = b.cls === null ? "?" : b.cls;
    svg.appendChild(r);
    const t = document.createElementNS(SVGNS, "text");
    t.setAttribute("x", x0);
    t.setAttribute("y", Math.max(vy + 12 * px, y0 - 3 * px));
    t.setAttribute("class", `${k}${sel}`);
    t.textContent = b.cls === null ? "?" : b.cls;
    svg.appendChild(t);
  }
  // on top, but only their outline and label take clicks: the boxes under them stay selectable
  (S.cell.not_counted || []).forEach((g, i) => {
    if (S.boxes.some((b) => sameBox(b.box, g.box))) return;     // restored already
    const [x0, y0, x1, y1] = g.box;
    const r = document.createElementNS(SVGNS, "rect");
    r.setAttribute("x", x0); r.setAttribute("y", y0);
    r.setAttribute("width", x1 - x0); r.setAttribute("height", y1 - y0);
    r.setAttribute("class", "ghost");
    r.dataset.ghost = i;
    const score = g.score !== null && g.score !== undefined ? ` ${g.score.toFixed(2)}` : "";
    const title = document.createElementNS(SVGNS, "title");
    title.textContent = `not counted (${g.why.replace(/_/g, " ")}): ${g.class}${score}; click to restore`;
    r.appendChild(title);
    svg.appendChild(r);
    const t = document.createElementNS(SVGNS, "text");
    t.setAttribute("x", x0); t.setAttribute("y", Math.max(vy + 12 * px, y0 - 3 * px));
    t.setAttribute("class", "ghost");
    t.dataset.ghost = i;
    t.textContent = `${g.class}?`;
    svg.appendChild(t);
  });
}

// ------------------------------------------------------------------------------------------ zoom and pan
function currentView() {
  return S.view || [0, 0, S.cell.width, S.cell.height];
}

function screenScale() {
  // screen pixels per image pixel at the current view (the SVG keeps the image's aspect ratio: "meet")
  const el = $("stage");
  const [, , vw, vh] = currentView();
  const w = el.clientWidth || 1, h = el.clientHeight || 1;
  return Math.min(w / vw, h / vh);
}

function setView(x, y, w) {
  const W = S.cell.width, H = S.cell.height;
  w = Math.max(Math.min(MIN_VIEW, W), Math.min(W, w));
  const h = w * H / W;
  if (w >= W - 1e-6) { S.view = null; renderOverlay(); return; }
  x = Math.max(0, Math.min(W - w, x));
  y = Math.max(0, Math.min(H - h, y));
  S.view = [x, y, w, h];
  renderOverlay();
}

function zoomAt(factor, cx, cy) {
  // zoom by `factor` (> 1: in) keeping image point (cx, cy) where it is on screen
  if (!S.cell) return;
  const [x, y, w, h] = currentView();
  if (cx === undefined) { cx = x + w / 2; cy = y + h / 2; }
  const nw = w / factor;
  const k = Math.max(Math.min(MIN_VIEW, S.cell.width), Math.min(S.cell.width, nw)) / w;
  setView(cx - (cx - x) * k, cy - (cy - y) * k, w * k);
}

function zoomFit() { if (S.cell) { S.view = null; renderOverlay(); } }

function showBox(b) {
  // keep a selected chromosome in view when zoomed in (centre it if it is outside)
  if (!S.view || !b) return;
  const [x, y, w, h] = S.view;
  const [x0, y0, x1, y1] = b.box;
  if (x0 >= x && y0 >= y && x1 <= x + w && y1 <= y + h) return;
  setView((x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - h / 2, w);
}

function renderZoom() {
  const el = $("zoom-level");
  if (!el || !S.cell) return;
  const full = S.cell.width / currentView()[2];
  el.textContent = `${Math.round(100 * screenScale())}%` + (S.view ? ` (${full.toFixed(1)}\u00d7)` : "");
  $("zoom-fit").disabled = !S.view;
}

function metaScale() {
  // karyogram pixels per metaphase pixel, from the boxes that have both (orient_all uses one scale a cell)
  const r = S.boxes.filter((b) => b.kbox).map((b) => (b.kbox[3] - b.kbox[1]) /
                                                Math.max(b.box[2] - b.box[0], b.box[3] - b.box[1]));
  if (!r.length) return 1;
  r.sort((a, b) => a - b);
  return r[Math.floor(r.length / 2)];
}

function tileSource(b, ms) {
  // [image, sx, sy, sw, sh, natural width, natural height] of a chromosome's cut-out: its place in karyogram.png,
  // or (a box drawn or moved here) its box in the metaphase at the karyogram's scale
  if (b.kbox && S.karyImg) {
    const [sx, sy] = b.kbox, sw = b.kbox[2] - b.kbox[0], sh = b.kbox[3] - b.kbox[1];
    return [S.karyImg, sx, sy, sw, sh, sw, sh];
  }
  if (S.metaImg) {
    const [sx, sy] = b.box, sw = b.box[2] - b.box[0], sh = b.box[3] - b.box[1];
    return [S.metaImg, sx, sy, sw, sh, sw * ms, sh * ms];
  }
  return null;
}

function tileFor(b, ms) {
  const c = document.createElement("canvas");
  c.className = `tile ${kind(b)}${b.uid === S.selected ? " sel" : ""}`;
  c.dataset.uid = b.uid;
  const src = tileSource(b, ms);
  if (!src) { c.width = 16; c.height = 30; return c; }
  const [img, sx, sy, sw, sh, nw, nh] = src;
  c.width = Math.max(4, Math.round(nw * TILE_SCALE)); c.height = Math.max(4, Math.round(nh * TILE_SCALE));
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, sx, sy, sw, sh, 0, 0, c.width, c.height);
  c.title = b.cls === null ? "new box" : `chromosome ${b.cls}`;
  return c;
}

function ideogramFor(cls, height) {
  // the ISCN ideogram of `cls` (bands from the server), `height` px tall, p-ter at top
  const ideo = S.cell.ideograms && S.cell.ideograms[cls];
  const c = document.createElement("canvas");
  c.className = "ideogram";
  c.dataset.cls = cls;
  const w = Math.max(6, Math.round(height / 14)), h = Math.max(10, Math.round(height));
  c.width = w; c.height = h;
  if (!ideo) return c;
  const ctx = c.getContext("2d");
  for (const [a, z, grey, stain] of ideo.bands) {
    const y0 = a * (h - 1), y1 = z * (h - 1);
    if (stain === "acen") {
      ctx.fillStyle = "#cd5050";
      ctx.beginPath();
      if (y0 < 0.5 * h && ideo.bands.some((x) => x[3] === "acen" && x[0] > a)) {
        ctx.moveTo(0, y0); ctx.lineTo(w, y0); ctx.lineTo(w / 2, y1);
      } else { ctx.moveTo(w / 2, y0); ctx.lineTo(w, y1); ctx.lineTo(0, y1); }
      ctx.fill();
      continue;
    }
    const inset = stain === "stalk" ? w * 0.3 : 0;
    ctx.fillStyle = `rgb(${grey},${grey},${grey})`;
    ctx.fillRect(inset, y0, w - 2 * inset, Math.max(0.5, y1 - y0));
  }
  ctx.strokeStyle = "#3c3c3c"; ctx.lineWidth = 1;
  ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
  c.title = `ideogram of ${cls} (ISCN)`;
  return c;
}

function fitTileScale(rows, by, ms) {
  // the scale at which the karyogram's rows fill the pane: every row within its width, all rows within its
  // height (then the cut-outs are as large as the pane allows, not a fixed fraction of karyogram.png)
  const root = $("karyogram");
  const W = root.clientWidth - 12, H = root.clientHeight - 8;
  const SLOT_PAD = 14, TILE_GAP = 5, ROW_PAD = 26;   // slot padding + ideogram, gaps, label + row padding (px)
  let scaleW = Infinity, sumH = 0, nRows = 0;
  for (const row of rows) {
    let nat = 0, fixed = 0, tallest = 0;
    for (const cls of row) {
      const list = by[cls] || [];
      fixed += SLOT_PAD + 10 + TILE_GAP * Math.max(0, list.length - 1);
      for (const b of list) {
        const src = tileSource(b, ms);
        if (!src) continue;
        nat += src[5]; tallest = Math.max(tallest, src[6]);
      }
      if (!list.length) fixed += 24;
    }
    if (nat > 0) scaleW = Math.min(scaleW, (W - fixed) / nat);
    sumH += tallest; nRows++;
  }
  const scaleH = sumH > 0 ? (H - nRows * ROW_PAD) / sumH : Infinity;
  const fit = Math.min(scaleW, scaleH, MAX_TILE_SCALE);
  const small = ["19", "20", "21", "22", "Y"].flatMap((c) => by[c] || [])
    .map((b) => (tileSource(b, ms) || [])[6]).filter((h) => h > 0).sort((a, b) => a - b);
  const readable = small.length ? READABLE_PX / small[small.length >> 1] : 0;
  const s = Math.min(Math.max(fit, readable), MAX_TILE_SCALE);
  return Number.isFinite(s) && s > 0 ? s : 0.5;
}

function renderKaryogram() {
  const root = $("karyogram");
  if (!S.cell) return;
  root.textContent = "";
  const ms = metaScale();
  const by = {};
  for (const b of S.boxes) (by[b.cls === null ? "?" : b.cls] ||= []).push(b);
  for (const list of Object.values(by)) list.sort((a, b) => (a.box[0] + a.box[2]) - (b.box[0] + b.box[2]));
  const hasY = (by.Y || []).length > 0;
  const rows = S.cell.rows.slice();
  if ((by["?"] || []).length) rows.push(["?"]);
  TILE_SCALE = fitTileScale(rows, by, ms);
  root.dataset.scale = TILE_SCALE.toFixed(3);
  // one ideogram height per chromosome length: chromosome 1's ideogram as tall as the cell's tallest 1-3 cut-out
  const tall = ["1", "2", "3"].flatMap((c) => by[c] || []).map((b) => (tileSource(b, ms) || [])[6] || 0);
  const ref = (tall.length ? Math.max(...tall) : 0) * TILE_SCALE || 120 * TILE_SCALE;
  for (const row of rows) {
    const div = document.createElement("div");
    div.className = "krow";
    for (const cls of row) {
      const slot = document.createElement("div");
      const list = by[cls] || [];
      const expected = cls === "?" ? 0 : cls === "X" ? (hasY ? 1 : 2) : cls === "Y" ? (hasY ? 1 : 0) : 2;
      slot.className = "slot" + (cls === "?" ? " pending-slot" : list.length !== expected ? " off" : "");
      slot.dataset.cls = cls;
      const tiles = document.createElement("div");
      tiles.className = "tiles";
      if (cls !== "?" && S.cell.ideograms && S.cell.ideograms[cls]) {
        tiles.appendChild(ideogramFor(cls, ref * S.cell.ideograms[cls].length));
      }
      for (const b of list) tiles.appendChild(tileFor(b, ms));
      if (!list.length) {
        const e = document.createElement("div");
        e.className = "empty";
        e.textContent = "\u2013";
        tiles.appendChild(e);
      }
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = cls === "?" ? "no class" : cls;
      const n = document.createElement("span");
      n.className = "n";
      n.textContent = `\u00d7${list.length}`;
      label.appendChild(n);
      slot.append(tiles, label);
      div.appendChild(slot);
    }
    root.appendChild(div);
  }
}

// ------------------------------------------------------------------------------------------ mouse
function svgPoint(evt) {
  const svg = $("overlay");
  const p = svg.createSVGPoint();
  p.x = evt.clientX; p.y = evt.clientY;
  return p.matrixTransform(svg.getScreenCTM().inverse());
}

function setupMetaphaseMouse() {
  const svg = $("overlay");
  let start = null, rubber = null, line = null;
  let pan = null;
  svg.addEventListener("wheel", (e) => {
    if (!S.cell) return;
    e.preventDefault();
    const p = svgPoint(e);
    zoomAt(e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, p.x, p.y);
  }, {passive: false});
  svg.addEventListener("pointerdown", (e) => {
    if (!S.cell) return;
    if (e.button === 1 || (e.button === 0 && (e.shiftKey || S.spaceDown))) {   // pan
      if (!S.view) return;
      pan = {x: e.clientX, y: e.clientY, view: S.view.slice(), scale: screenScale()};
      svg.setPointerCapture(e.pointerId);
      svg.classList.add("panning");
      e.preventDefault();
      return;
    }
    if (e.button !== 0) return;
    if (S.splitMode) {
      line = [svgPoint(e)].map((p) => [p.x, p.y]);
      rubber = document.createElementNS(SVGNS, "polyline");
      rubber.setAttribute("class", "splitline drawing");
      svg.appendChild(rubber);
      svg.setPointerCapture(e.pointerId);
      e.preventDefault();
      return;
    }
    const uid = e.target.dataset && e.target.dataset.uid;
    if (uid) { select(Number(uid)); e.preventDefault(); return; }
    const ghost = e.target.dataset && e.target.dataset.ghost;
    if (ghost !== undefined) { restore(Number(ghost)); e.preventDefault(); return; }
    start = svgPoint(e);
    rubber = document.createElementNS(SVGNS, "rect");
    rubber.setAttribute("class", "rubber");
    svg.appendChild(rubber);
    svg.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  svg.addEventListener("pointermove", (e) => {
    if (pan) {
      const [x, y, w] = pan.view;
      setView(x - (e.clientX - pan.x) / pan.scale, y - (e.clientY - pan.y) / pan.scale, w);
      return;
    }
    if (line) {
      const p = svgPoint(e);
      const last = line[line.length - 1];
      if (Math.hypot(p.x - last[0], p.y - last[1]) * screenScale() >= 4) line.push([p.x, p.y]);
      rubber.setAttribute("points", line.concat([[p.x, p.y]]).map((q) => q.join(",")).join(" "));
      return;
    }
    if (!start) return;
    const p = svgPoint(e);
    rubber.setAttribute("x", Math.min(start.x, p.x)); rubber.setAttribute("y", Math.min(start.y, p.y));
    rubber.setAttribute("width", Math.abs(p.x - start.x)); rubber.setAttribute("height", Math.abs(p.y - start.y));
  });
  svg.addEventListener("pointerup", (e) => {
    if (pan) { pan = null; svg.classList.remove("panning"); return; }
    if (line) {
      const p = svgPoint(e);
      const drawn = line.concat([[p.x, p.y]]);
      line = null;
      rubber.remove();
      addSplit(drawn.length > 200 ? drawn.filter((_, i) => i % Math.ceil(drawn.length / 200) === 0) : drawn);
      return;
    }
    if (!start) return;
    const p = svgPoint(e);
    const W = S.cell.width, H = S.cell.height;
    const box = [Math.max(0, Math.min(start.x, p.x)), Math.max(0, Math.min(start.y, p.y)),
                 Math.min(W, Math.max(start.x, p.x)), Math.min(H, Math.max(start.y, p.y))].map(Math.round);
    start = null;
    rubber.remove();
    if (box[2] - box[0] >= 4 && box[3] - box[1] >= 4) addBox(box);
    else { S.selected = null; renderAll(); }
  });
}

function setupKaryogramMouse() {
  const root = $("karyogram");
  let drag = null;
  const slotAt = (x, y) => {
    const el = document.elementFromPoint(x, y);
    return el && el.closest ? el.closest(".slot") : null;
  };
  root.addEventListener("pointerdown", (e) => {
    const tile = e.target.closest("canvas.tile");
    if (!tile || e.button !== 0) return;
    drag = {uid: Number(tile.dataset.uid), x: e.clientX, y: e.clientY, tile, ghost: null, over: null};
    tile.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    if (!drag.ghost && Math.hypot(e.clientX - drag.x, e.clientY - drag.y) < 5) return;
    if (!drag.ghost) {
      drag.ghost = document.createElement("canvas");
      drag.ghost.width = drag.tile.width; drag.ghost.height = drag.tile.height;
      drag.ghost.getContext("2d").drawImage(drag.tile, 0, 0);
      drag.ghost.className = "ghost";
      document.body.appendChild(drag.ghost);
    }
    drag.ghost.style.left = `${e.clientX - drag.ghost.width / 2}px`;
    drag.ghost.style.top = `${e.clientY - drag.ghost.height / 2}px`;
    const slot = slotAt(e.clientX, e.clientY);
    if (drag.over && drag.over !== slot) drag.over.classList.remove("target");
    if (slot && slot.dataset.cls !== "?") { slot.classList.add("target"); drag.over = slot; } else drag.over = null;
  });
  const end = (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.ghost) d.ghost.remove();
    if (d.over) d.over.classList.remove("target");
    if (!d.ghost) { select(d.uid); return; }
    const slot = slotAt(e.clientX, e.clientY);
    S.selected = d.uid;
    if (slot && slot.dataset.cls !== "?") setClass(d.uid, slot.dataset.cls); else renderAll();
  };
  root.addEventListener("pointerup", end);
  root.addEventListener("pointercancel", (e) => { if (drag && drag.ghost) drag.ghost.remove(); drag = null; void e; });
}

// ------------------------------------------------------------------------------------------ keyboard
function commitDigits() {
  clearTimeout(S.digitTimer);
  const v = S.digitBuf;
  S.digitBuf = "";
  if (v && S.selected !== null) setClass(S.selected, v);
  renderSelection();
}

function digit(d) {
  if (S.selected === null) { message("Select a chromosome first (\u2192 or a click).", ""); return; }
  clearTimeout(S.digitTimer);
  if (S.digitBuf) {
    const v = S.digitBuf + d;
    if (Number(v) >= 1 && Number(v) <= 22) { S.digitBuf = v; commitDigits(); return; }
    commitDigits();
  }
  if (d === "0") { message("There is no chromosome 0.", "error"); return; }
  if (d === "1" || d === "2") {
    S.digitBuf = d;
    S.digitTimer = setTimeout(commitDigits, DIGIT_WAIT_MS);
    renderSelection();
  } else {
    S.digitBuf = d;
    commitDigits();
  }
}

function newBoxByKeyboard() {
  if (!S.cell) return;
  const ws = S.boxes.map((b) => b.box[2] - b.box[0]).sort((a, b) => a - b);
  const hs = S.boxes.map((b) => b.box[3] - b.box[1]).sort((a, b) => a - b);
  const w = ws.length ? ws[ws.length >> 1] : 40, h = hs.length ? hs[hs.length >> 1] : 80;
  const cx = S.cell.width / 2, cy = S.cell.height / 2;
  addBox([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2].map(Math.round));
}

function onKey(e) {
  const t = e.target;
  const typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type === "text"));
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); accept(); return; }
  if (typing) {
    if (e.key === "Escape") { t.blur(); e.preventDefault(); }
    return;
  }
  if (e.altKey || (e.metaKey && !e.ctrlKey)) return;
  const k = e.key;
  const sel = S.selected;
  if (e.ctrlKey && k.startsWith("Arrow")) {
    if (sel === null) return;
    e.preventDefault();
    const d = 4;
    const v = {ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, -d], ArrowDown: [0, d]}[k];
    if (e.shiftKey) nudge(sel, 0, 0, v[0], v[1]); else nudge(sel, v[0], v[1], 0, 0);
    return;
  }
  if (e.ctrlKey) { if (k === "z" || k === "Z") { e.preventDefault(); undo(); } return; }
  if (/^[0-9]$/.test(k)) { e.preventDefault(); digit(k); return; }
  switch (k) {
    case "ArrowRight": case "ArrowDown": case "j": e.preventDefault(); commitDigits(); step(1); break;
    case "ArrowLeft": case "ArrowUp": case "k": e.preventDefault(); commitDigits(); step(-1); break;
    case "Enter": if (S.digitBuf) { e.preventDefault(); commitDigits(); } break;
    case "x": case "X": case "y": case "Y":
      e.preventDefault();
      if (sel === null) { message("Select a chromosome first.", ""); break; }
      S.digitBuf = ""; setClass(sel, k.toUpperCase()); break;
    case "Delete": case "Backspace":
      e.preventDefault();
      if (sel !== null) deleteBox(sel); break;
    case "n": case "N": e.preventDefault(); newBoxByKeyboard(); break;
    case "f": case "F": e.preventDefault(); resolveNextFlag(); break;
    case "g": case "G": e.preventDefault(); restoreNext(); break;
    case "c": case "C": e.preventDefault(); $("comment").focus(); break;
    case "z": case "Z": e.preventDefault(); undo(); break;
    case "r": case "R": e.preventDefault(); reloadCell(); break;
    case "m": case "M": e.preventDefault(); toggleMasks(); break;
    case "s": case "S": e.preventDefault(); toggleSplit(); break;
    case "Escape":
      if (S.splitMode) { toggleSplit(false); break; }
      S.digitBuf = ""; S.selected = null; renderAll(); break;
    case "+": case "=": e.preventDefault(); zoomAt(ZOOM_STEP); break;
    case "-": case "_": e.preventDefault(); zoomAt(1 / ZOOM_STEP); break;
    case "Home": case "w": case "W": e.preventDefault(); zoomFit(); break;
    case " ": e.preventDefault(); S.spaceDown = true; break;
    case "]": case "PageDown": e.preventDefault(); moveCell(1); break;
    case "[": case "PageUp": e.preventDefault(); moveCell(-1); break;
    default: break;
  }
}

function moveCell(delta) {
  const i = S.cells.findIndex((c) => c.id === S.cellId);
  const j = i + delta;
  if (j >= 0 && j < S.cells.length) openCell(S.cells[j].id);
}

async function reloadCell() {
  if (!S.cellId) return;
  delete S.drafts[S.cellId];
  await openCell(S.cellId, {keepDraft: false});
  await loadList();
}

// ------------------------------------------------------------------------------------------ accept
async function accept() {
  if (!S.cell || S.busy) return;
  commitDigits();
  const pending = S.boxes.filter((b) => b.cls === null).length;
  if (pending) { message(`${pending} new box(es) have no class yet: type one (1-22, X, Y) first.`, "error"); return; }
  const sent = ordered();
  const body = {
    version: S.cell.version,
    boxes: sent.map((b) => ({class: b.cls, box: b.box, origin: b.origin})),
    resolved: Array.from(S.resolved),
    comment: $("comment").value,
    splits: splitsOn(sent),
  };
  S.busy = true;
  $("accept").disabled = true;
  message("Saving\u2026", "");
  try {
    const cell = await api("POST", `/api/cells/${encodeURIComponent(S.cellId)}/accept`, body);
    delete S.drafts[S.cellId];
    S.cell = cell;
    fromServer(cell);
    setLinks(cell);
    S.selected = null;
    await loadImages(cell);
    renderAll();
    await refreshCall();
    await loadList();
    message(`Accepted: ${cell.call.text} \u2014 ${reviewedLine(cell)}.`, "ok");
    document.body.dataset.saved = cell.version;
  } catch (e) {
    if (e.status === 409) message(`Not saved. ${e.message} Press R to reload the cell.`, "error");
    else message(`Not saved: ${e.message}`, "error");
  } finally {
    S.busy = false;
    $("accept").disabled = false;
  }
}

// ------------------------------------------------------------------------------------------ start
function setup() {
  document.addEventListener("keydown", onKey);
  document.addEventListener("keyup", (e) => { if (e.key === " ") S.spaceDown = false; });
  $("zoom-in").addEventListener("click", () => zoomAt(ZOOM_STEP));
  $("zoom-out").addEventListener("click", () => zoomAt(1 / ZOOM_STEP));
  $("zoom-fit").addEventListener("click", zoomFit);
  $("accept").addEventListener("click", accept);
  $("undo").addEventListener("click", undo);
  $("reload").addEventListener("click", reloadCell);
  $("show-masks").addEventListener("click", () => toggleMasks());
  $("split-mode").addEventListener("click", () => toggleSplit());
  $("comment").addEventListener("input", () => { if (!S.dirty) { S.dirty = true; renderList(); } });
  setupMetaphaseMouse();
  setupKaryogramMouse();
  window.addEventListener("resize", () => { renderKaryogram(); renderOverlay(); });
  if (window.ResizeObserver) {   // the flags list grows and shrinks with the call: the panes give way, so redraw
    let w = 0, h = 0, kw = 0, kh = 0;
    new ResizeObserver(() => {
      const el = $("stage");
      if (el.clientWidth !== w || el.clientHeight !== h) { w = el.clientWidth; h = el.clientHeight; renderOverlay(); }
    }).observe($("stage"));
    new ResizeObserver(() => {
      const el = $("karyogram");
      if (el.clientWidth !== kw || el.clientHeight !== kh) {
        kw = el.clientWidth; kh = el.clientHeight; renderKaryogram();
      }
    }).observe($("karyogram"));
  }
  window.addEventListener("beforeunload", (e) => {
    saveDraft();
    if (Object.values(S.drafts).some((d) => d.dirty)) { e.preventDefault(); e.returnValue = ""; }
  });
}

async function start() {
  setup();
  try {
    await loadList();
  } catch (e) {
    message(e.message, "error");
    return;
  }
  const want = decodeURIComponent(location.hash.slice(1));
  const first = S.cells.find((c) => c.id === want) || S.cells.find((c) => c.status === "to review") || S.cells[0];
  if (first) await openCell(first.id);
  document.body.dataset.ready = "1";
}

start();
