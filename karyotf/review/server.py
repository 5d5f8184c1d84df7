"""The review web app's server: the standard library's ``ThreadingHTTPServer``, a JSON API over
:class:`~karyotf.review.store.ReviewFolder` and the page's assets (shipped in ``karyotf/review/static``).

Routes (``{id}`` is a cell id, URL-encoded):

==========================  =====================================================================================
``GET /``                   the page (the session token is in its ``<meta name="karyotf-token">``)
``GET /static/NAME``        the page's own JS/CSS (only files shipped in the package)
``GET /files/PATH``         an image or JSON file inside the review folder (nothing outside it: no ``..``, no
                            symlink leading out, only image/JSON/XML suffixes)
``GET /api/cells``          the cell list with status
``GET /api/cells/{id}``     one cell: image, boxes, call, flags, review, version
``POST /api/call``          the count call of a list of boxes (``karyotf.karyogram.call.count_call``)
``POST /api/cells/{id}/accept``  write the review; 409 when another tab saved the cell since it was loaded
``POST /api/cells/{id}/masks``   each chromosome's mask and cut-out after the page's split lines (``{boxes,
                            splits}``; a bad line: 400 naming the chromosome); ``accept`` takes the same ``splits``
``GET /cases``              the review-by-case page (:mod:`karyotf.review.cases`)
``GET /api/cases``          the cases (cells grouped by the case pattern) with their karyotype as the cells stand
``GET /api/cases/{id}``     one case: karyotype, lines, flags, counts, cells, its accepted review, version
``POST /api/cases/{id}/accept``  accept the case as a whole (reviewer, time, comment; a reviewed case report)
==========================  =====================================================================================

Every POST needs the session token in ``X-Karyotf-Token`` and a JSON body; errors are JSON ``{"error": ...}``
with a 4xx status.  Bound to a loopback address, the server also refuses requests whose ``Host`` is not that
address (a DNS-rebinding page cannot talk to it).
"""
from __future__ import annotations

import hmac
import html as _html
import ipaddress
import json
import logging
import mimetypes
import secrets
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .. import defaults as D
from ..errors import ReviewError
from .cases import CaseReview
from .store import ReviewConflict, ReviewFolder, UnknownCell, inside, parse_boxes

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
TOKEN_HEADER = "X-Karyotf-Token"
MAX_BODY = 4 * 1024 * 1024
SERVED_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp",
                   ".json": "application/json", ".xml": "text/plain; charset=utf-8"}
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReviewServer(ThreadingHTTPServer):
    """The server of one review session: its folder, token and URL."""

    daemon_threads = True

    def __init__(self, folder: ReviewFolder, host: str = "127.0.0.1", port: int = 0):
        self.folder = folder
        self.token = secrets.token_urlsafe(24)
        self.loopback = is_loopback(host)
        super().__init__((host, port), Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def allowed_hosts(self) -> set[str]:
        p = self.port
        return {f"127.0.0.1:{p}", f"localhost:{p}", f"[::1]:{p}", f"{self.server_address[0]}:{p}"}

    def start_thread(self) -> threading.Thread:
        """Serve in a daemon thread (tests, notebooks); stop with :meth:`shutdown` then :meth:`server_close`."""
        t = threading.Thread(target=self.serve_forever, name="karyotf-review", daemon=True)
        t.start()
        return t


class Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "karyotf-review"
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------------------------------ plumbing
    def log_message(self, fmt, *args):  # quiet by default: one debug line a request
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        # the request body may be unread (a refused POST): close, or its bytes would be read as the next request
        self.close_connection = True
        self._send(status, json.dumps({"error": message, "status": status}).encode("utf-8"),
                   "application/json; charset=utf-8", {"Connection": "close"})

    def _dispatch(self, fn) -> None:
        try:
            self._check_host()
            fn()
        except HttpError as exc:
            self._error(exc.status, str(exc))
        except ReviewConflict as exc:
            self._error(HTTPStatus.CONFLICT, str(exc))
        except UnknownCell as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except ReviewError as exc:
            self._error(HTTPStatus.BAD_REQUEST if self.command == "POST" else HTTPStatus.UNPROCESSABLE_ENTITY,
                        str(exc))
        except (BrokenPipeError, ConnectionResetError):  # the browser went away
            pass
        except Exception as exc:  # never let one request take the server down
            log.exception("review server: %s %s failed", self.command, self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}: {exc}")

    def _check_host(self) -> None:
        if self.server.loopback:
            host = (self.headers.get("Host") or "").lower()
            if host not in self.server.allowed_hosts():
                raise HttpError(HTTPStatus.FORBIDDEN, f"unexpected Host {host!r}: open the URL the server printed")

    def _path(self) -> tuple[str, dict]:
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, urllib.parse.parse_qs(parsed.query)

    def _body(self):
        if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), self.server.token):
            raise HttpError(HTTPStatus.FORBIDDEN, f"missing or wrong {TOKEN_HEADER} header: requests that change "
                            "data need this session's token (fix: reload the page the server printed)")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body must be JSON (Content-Type: application/json)")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if length > MAX_BODY:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"malformed JSON body ({exc})") from None

    # ------------------------------------------------------------------------------------ routes
    def do_GET(self):
        self._dispatch(self._get)

    def do_HEAD(self):
        self._dispatch(self._get)

    def do_POST(self):
        self._dispatch(self._post)

    def do_PUT(self):
        self._dispatch(self._not_allowed)

    do_DELETE = do_PATCH = do_PUT

    def _not_allowed(self):
        raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported here")

    def _get(self):
        path, _ = self._path()
        if path in ("/", "/index.html"):
            return self._page()
        if path == "/favicon.ico":
            return self._send(204, b"", "image/x-icon")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path.startswith("/files/"):
            return self._file(path[len("/files/"):])
        if path == "/api/cells":
            folder = self.server.folder
            return self._json(200, {"root": str(folder.root), "reviewer": folder.reviewer, "cells": folder.list()})
        if path.startswith("/api/cells/"):
            cid = urllib.parse.unquote(path[len("/api/cells/"):])
            return self._json(200, self.server.folder.load(cid))
        if path == "/cases":
            return self._page("cases.html")
        if path == "/api/cases":
            folder = self.server.folder
            return self._json(200, {"root": str(folder.root), "reviewer": folder.reviewer,
                                    "case_pattern": self._case_review().case_pattern,
                                    "cases": self._case_review().list()})
        if path.startswith("/api/cases/"):
            return self._json(200, self._case_review().load(urllib.parse.unquote(path[len("/api/cases/"):])))
        raise HttpError(HTTPStatus.NOT_FOUND, f"no such page {path!r}")

    def _case_review(self):
        srv = self.server
        if getattr(srv, "case_review", None) is None:
            srv.case_review = CaseReview(srv.folder, case_pattern=getattr(srv, "case_pattern", None) or D.CASE_PATTERN)
        return srv.case_review

    def _post(self):
        path, _ = self._path()
        if path == "/api/call":
            body = self._body()
            if not isinstance(body, dict):
                raise HttpError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object {boxes, cell}")

            folder = self.server.folder
            params = image = None
            width = height = 1e9
            if body.get("cell") is not None:
                m = folder._model(folder.cell(str(body["cell"])))
                params, width, height, image = m["params"], m["width"], m["height"], m["image"]
            boxes = [b for b, _ in parse_boxes(body.get("boxes"), width, height)]
            return self._json(200, folder.call(boxes, params, image))
        if path.startswith("/api/cells/") and path.endswith("/accept"):
            cid = urllib.parse.unquote(path[len("/api/cells/"):-len("/accept")])
            body = self._body()
            self.server.folder.cell(cid)  # 404 before 400 for an unknown cell
            return self._json(200, self.server.folder.accept(cid, body))
        if path.startswith("/api/cells/") and path.endswith("/masks"):
            cid = urllib.parse.unquote(path[len("/api/cells/"):-len("/masks")])
            body = self._body()
            self.server.folder.cell(cid)  # 404 before 400 for an unknown cell
            return self._json(200, self.server.folder.masks(cid, body))
        if path.startswith("/api/cases/") and path.endswith("/accept"):
            cid = urllib.parse.unquote(path[len("/api/cases/"):-len("/accept")])
            body = self._body()
            return self._json(200, self._case_review().accept(cid, body))
        raise HttpError(HTTPStatus.NOT_FOUND, f"no such endpoint {path!r}")

    def _page(self, name: str = "index.html"):
        html = (STATIC_DIR / name).read_text(encoding="utf-8")

        folder = self.server.folder
        html = (html.replace("{{TOKEN}}", self.server.token)
                .replace("{{REVIEWER}}", _html.escape(folder.reviewer, quote=True))
                .replace("{{ROOT}}", _html.escape(folder.root.name, quote=True)))
        self._send(200, html.encode("utf-8"), "text/html; charset=utf-8", {"Content-Security-Policy": CSP})

    def _static(self, name: str):
        shipped = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
        if name not in shipped or name.endswith(".html"):  # pages are served with their token filled in
            raise HttpError(HTTPStatus.NOT_FOUND, f"no static file {name!r}")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        self._send(200, shipped[name].read_bytes(), ctype)

    def _file(self, rel: str):
        rel = urllib.parse.unquote(rel)
        parts = rel.split("/")
        if (not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel
                or any(p in ("", ".", "..") for p in parts)):
            raise HttpError(HTTPStatus.FORBIDDEN, f"refused path {rel!r}: only files inside the review folder "
                            "are served (no '..', no absolute paths)")
        root = self.server.folder.root
        path = root.joinpath(*parts)
        if not inside(root, path):
            raise HttpError(HTTPStatus.FORBIDDEN, f"refused path {rel!r}: it leads outside the review folder")
        ctype = SERVED_SUFFIXES.get(path.suffix.lower())
        if ctype is None:
            raise HttpError(HTTPStatus.FORBIDDEN, f"refused path {rel!r}: only images, JSON and XML are served")
        if not path.is_file():
            raise HttpError(HTTPStatus.NOT_FOUND, f"no file {rel!r} in the review folder")
        self._send(200, path.read_bytes(), ctype)


def make_server(root: str | Path, host: str = "127.0.0.1", port: int = 0,
                reviewer: str | None = None, case_pattern: str | None = None) -> ReviewServer:
    """A review server over ``root`` (not yet serving: call ``serve_forever()`` or ``start_thread()``).
    ``port`` 0 picks a free port; ``.url`` and ``.token`` tell where it is and what POSTs must carry."""
    folder = ReviewFolder(root, reviewer=reviewer)
    if not folder.cells(refresh=True):
        raise ReviewError(f"{folder.root}: no cell found (no detections.json down to depth 3) (fix: point at the "
                          "folder karyotf karyogram --out wrote)")
    try:
        server = ReviewServer(folder, host=host, port=port)
        server.case_pattern = case_pattern  # review by case (/cases): None is records' default pattern
        return server
    except OSError as exc:
        raise ReviewError(f"cannot listen on {host}:{port} ({exc.strerror}) (fix: pick another --port)") from None


def serve(root: str | Path, host: str = "127.0.0.1", port: int = 0, reviewer: str | None = None,
          echo=None, case_pattern: str | None = None) -> None:
    """Serve the review app over ``root`` until Ctrl-C; prints the URL (flushed: a pipe sees it at once)."""
    echo = echo or (lambda line: print(line, flush=True))
    server = make_server(root, host=host, port=port, reviewer=reviewer, case_pattern=case_pattern)
    n = len(server.folder.cells())
    if not server.loopback:
        echo(f"WARNING: listening on {host}, not on a loopback address: anyone who can reach this machine can "
             "open the page (and with it the session token) and change the review folder. Use only on a "
             "network you trust.")
    echo(f"karyotf review: {n} cell(s) in {server.folder.root}, reviewer {server.folder.reviewer}")
    echo(f"open {server.url}  (Ctrl-C stops; review by case: {server.url}cases)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
