"""The karyogram's report: ``report.html`` (call, flags, per-class counts and confidences, the picture embedded
as base64 PNG, self-contained) and ``report.json`` (the same, for scripts)."""
from __future__ import annotations

import base64
import html
from pathlib import Path

from .. import classes
from ..io import atomic_write_json, atomic_write_text
from .call import FLAG_CODES, Call, level_of
from .layout import expected_copies


def class_table(call: Call) -> list[dict]:
    """One row a class: count, expected count, mean score (if scored)."""
    rows = []
    for n in classes.NAMES:
        exp = expected_copies(n, call.counts)
        rows.append({"class": n, "group": classes.GROUP_OF[n], "count": call.counts.get(n, 0), "expected": exp,
                     "mean_score": None if n not in call.class_scores else round(call.class_scores[n], 4)})
    return rows


def report_dict(call: Call, source: dict, timings: dict | None = None, paths: dict | None = None,
                not_counted: dict | None = None) -> dict:
    d = {"call": call.iscn, "text": call.text, "normal": call.is_normal, "total": call.total, "sex": call.sex,
         "no_call": call.no_call, "changes": call.changes, "review": call.review_codes,
         "mean_score": None if call.mean_score is None else round(call.mean_score, 4),
         "flags": [f.to_dict() for f in call.flags], "classes": class_table(call), "source": source}
    if call.box_check is not None:
        d["box_check"] = call.box_check.to_dict()
    if not_counted is not None:
        d["not_counted"] = not_counted
    if timings:
        d["timings_ms"] = {k: round(v, 1) for k, v in timings.items()}
    if paths:
        d["files"] = {k: Path(v).name for k, v in paths.items()}
    return d


_CSS = """body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} .call{font-size:30px;font-weight:bold;margin:8px 0}
.ok{color:#1a7f37} .warn{color:#c62828} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right} th{background:#f3f3f3}
tr.off td{background:#fdecea} img{max-width:100%;border:1px solid #ddd} .src{color:#666;font-size:13px}
ul.flags li{color:#c62828} ul.notes li{color:#555}"""


def _not_counted_html(not_counted: dict) -> list[str]:
    """Detections that are not in the count: removed by the NMS, left out by the joint labelling, or below the
    minimum score."""
    esc = html.escape
    sup, below = not_counted.get("suppressed", []), not_counted.get("below_min_score", [])
    left = not_counted.get("left_out", [])
    if not sup and not below and not left:
        return []
    parts = ["<h2>Detections not counted</h2>"]
    if left:
        parts.append(f"<p>{len(left)} box(es) left out of the count by the joint labelling (judged a duplicate, a "
                     "fragment or a stray from the detector's calibrated score, the classifier and the karyotype "
                     "prior):</p><table><tr><th>class (top-1)</th><th>score</th><th>P(chromosome)</th><th>box</th>"
                     "</tr>")
        parts += [f"<tr><td>{esc(str(d['class']))}</td><td>{d.get('score') or 0:.2f}</td>"
                  f"<td>{d['p_chromosome']:.2f}</td><td>{esc(str(d['box']))}</td></tr>" for d in left]
        parts.append("</table>")
    if sup:
        parts.append(f"<p>{len(sup)} box(es) removed by the class-agnostic NMS (each overlaps a kept box):</p>"
                     "<table><tr><th>class</th><th>score</th><th>box</th><th>kept class</th><th>IoU</th></tr>")
        parts += [f"<tr><td>{esc(str(d['class']))}</td><td>{d.get('score', 0):.2f}</td>"
                  f"<td>{esc(str(d['box']))}</td><td>{esc(str(d['kept_class']))}</td><td>{d['iou']:.2f}</td></tr>"
                  for d in sup]
        parts.append("</table>")
    if below:
        parts.append(f"<details><summary>{len(below)} detection(s) below the minimum score "
                     f"(best {below[0].get('score', 0):.2f}, class {esc(str(below[0]['class']))})</summary>"
                     "<table><tr><th>class</th><th>score</th><th>box</th></tr>")
        parts += [f"<tr><td>{esc(str(d['class']))}</td><td>{d.get('score', 0):.2f}</td><td>{esc(str(d['box']))}</td>"
                  "</tr>" for d in below]
        parts.append("</table></details>")
    return parts


def _review_html(review: dict) -> list[str]:
    """The review section of a reviewed cell's report: who, when, the comment, resolved and open flags, changes."""
    esc = html.escape
    rows = [("reviewer", review.get("reviewer")), ("reviewed at (UTC)", review.get("reviewed_at")),
            ("revision", review.get("revision")),
            ("resolved flags", ", ".join(review.get("resolved_flags") or []) or "none"),
            ("open flags", ", ".join(review.get("open_flags") or []) or "none")]
    ch = review.get("changes") or {}
    if ch:
        rows.append(("changes against the model", "; ".join([
            f"{len(ch.get('relabelled') or [])} relabelled", f"{len(ch.get('moved') or [])} moved",
            f"{len(ch.get('deleted') or [])} deleted", f"{ch.get('added') or 0} added"])))
    model = review.get("model") or {}
    if model.get("call") is not None or model.get("count") is not None:
        rows.append(("model's call", f"{model.get('call') or 'no call'} ({model.get('count')} boxes)"))
    out = ["<h2>Review</h2><table class='review'>"]
    out += [f"<tr><th>{esc(k)}</th><td style='text-align:left'>{esc(str(v if v is not None else ''))}</td></tr>"
            for k, v in rows]
    out.append("</table>")
    comment = review.get("comment") or ""
    out.append("<p><b>Comment:</b> " + (f"<span class='comment' style='white-space:pre-wrap'>{esc(comment)}</span>"
                                        if comment else "none") + "</p>")
    return out


def write_html(path: Path, call: Call, png: bytes | None, source: dict, timings: dict | None = None,
               not_counted: dict | None = None, review: dict | None = None) -> Path:
    """``review``: the review section (the review app's accept), shown under the call."""
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>karyotf karyogram: {esc(call.text)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Karyogram of {esc(str(source.get('image', '')))}</h1>",
             (f"<div class='src'>chromosomes from {esc(str(source['kind']))}"
              + (f": {esc(str(source['from']))}" if source.get("from") else "") + "</div>"
              if source.get("kind") else ""),
             f"<div class='call {'ok' if call.is_normal and not call.flags else 'warn'}'>{esc(call.text)}</div>"]
    if call.total == 0:
        parts.append("<p class='warn'><b>No chromosomes were detected in this image.</b> There is nothing to count: "
                     "check the image (is it a metaphase?), the model, or lower the score threshold.</p>")
    if call.mean_score is not None:
        parts.append(f"<p>mean detection score {call.mean_score:.2f}</p>")
    if review:
        parts += _review_html(review)
    if call.review_flags:
        parts.append("<h2>Review: the call may be wrong</h2><ul class='flags'>")
        parts += [f"<li><b>{esc(f.code)}</b>: {esc(f.message)}</li>" for f in call.review_flags]
        parts.append("</ul>")
    else:
        parts.append("<p>Nothing to review: no flag says the call may be wrong.</p>")
    if call.notes:
        parts.append("<details><summary>Notes (" + str(len(call.notes)) + "): worth knowing, the call is not in "
                     "doubt</summary><ul class='notes'>")
        parts += [f"<li><b>{esc(f.code)}</b>: {esc(f.message)}</li>" for f in call.notes]
        parts.append("</ul></details>")
    if png is not None:
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>Karyogram</h2><img alt='karyogram' src='data:image/png;base64,{b64}'>")
    parts += _not_counted_html(not_counted or {})
    parts.append("<h2>Chromosomes per class</h2><table><tr><th>class</th><th>group</th><th>count</th>"
                 "<th>expected</th><th>mean score</th></tr>")
    for r in class_table(call):
        off = " class='off'" if r["count"] != r["expected"] else ""
        score = "&ndash;" if r["mean_score"] is None else f"{r['mean_score']:.2f}"
        parts.append(f"<tr{off}><td>{r['class']}</td><td>{r['group']}</td><td>{r['count']}</td>"
                     f"<td>{r['expected']}</td><td>{score}</td></tr>")
    parts.append("</table><h2>Flag legend</h2><ul>")
    parts += [f"<li><b>{esc(k)}</b> ({level_of(k)}): {esc(v)}</li>" for k, v in FLAG_CODES.items()]
    others = {f.code: f.message for f in call.flags if f.code not in FLAG_CODES}  # a classifier's, named by themselves
    parts += [f"<li><b>{esc(k)}</b>: see the flag above</li>" for k in others]
    parts.append("</ul><p class='src'>The count call counts boxes per class as detected; it never pairs or moves "
                 "chromosomes between classes, and it cannot see structural changes.</p>")
    if timings:
        parts.append("<p class='src'>timings (ms): " + esc(", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
                     + "</p>")
    parts.append("</body></html>\n")
    return atomic_write_text(path, "".join(parts))


def write_json(path: Path, data: dict) -> Path:
    return atomic_write_json(path, data)
