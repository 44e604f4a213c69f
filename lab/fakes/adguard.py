#!/usr/bin/env python3
"""A faithful stand-in for AdGuard Home's HTTP API (/control/*), for tests only.

AdGuard Home cannot run on the test machine, so this fake answers the part of its API that
Homelab (daemon/src/dns/adguard.rs) and the independent client (PyPI `adguardhome`, used by
Home Assistant; see check_adguard.py) use. Behaviour follows the real server, read from
AdguardTeam/AdGuardHome (v0.108.0-b.90-21-g75e43ab5) and its openapi/openapi.yaml:

- internal/home/authhttp.go: a session cookie `agh_session` (from POST /control/login) is
  looked at first, else HTTP Basic. An unauthenticated request to a protected path gets 401
  with an empty body; a failed /control/login gets 403 "invalid username or password".
- internal/home/authratelimiter.go: failures are counted per remote address; the
  `max_attempts`-th failure (config `auth_attempts`, default 5) blocks the address for
  `block_duration` (`block_auth_min`, default 15 minutes). While blocked, /control/login
  answers 429 with Retry-After, and Basic auth simply fails (401). A success clears the count.
- internal/home/control.go: a method other than the route's gets 405 "only method X is
  allowed"; a POST/PUT with a body whose Content-Type is not exactly application/json gets
  415 "only content-type application/json is allowed"; before the first-run wizard every
  /control/ path but /control/install/* is redirected (302) to install.html, and after it
  /control/install/* answers 403.
- internal/home/controlinstall.go: a password under 8 characters gets 422.
- internal/filtering/rewritehttp.go: add appends (duplicates are accepted, the domain is
  lower-cased), delete removes every equal {domain, answer}, update replaces the first equal
  target or answers 400 "target rule not found"; `enabled` defaults to true and is kept by an
  update that leaves it out.
- internal/filtering/http.go: add_url refuses a URL already added and one it cannot fetch
  (400); it answers "OK <n> rules". remove_url of an unknown URL still answers OK.
- internal/querylog/searchcriterion.go: response_status=blocked matches FilteredBlackList and
  FilteredBlockedService; `search` matches the host or client, containing, case-insensitive
  (strict equality when quoted); the default limit is 500; older_than pages back.

Bounded: request bodies are capped, lists are capped, each connection times out. Filter lists
are fetched only from loopback addresses or absolute file paths: no traffic leaves the machine.

Run: python3 lab/fakes/adguard.py --port N [--state seed.json]
Prints "ready <port>" on stdout once listening (with --port 0 the kernel picks the port).
"""

import argparse
import base64
import copy
import hashlib
import ipaddress
import json
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20
MAX_LIST_BYTES = 16 << 20
MAX_ITEMS = 10_000
FETCH_TIMEOUT = 5
FAILED_AUTH_TTL = 60  # authratelimiter.go: failedAuthTTL, one minute
PASSWORD_MIN_RUNES = 8

DEFAULT_STATE = {
    "configured": True,
    "version": "v0.107.71",
    "language": "en",
    "users": [{"name": "admin", "password": "admin-password"}],
    "max_attempts": 5,
    "block_duration_min": 15,
    "protection_enabled": True,
    "dns_port": 53,
    "http_port": 80,
    # What the setup page suggests (ADGUARD_HOME_DEFAULT_WEB_PORT in the official image: 3000).
    "default_web_port": 3000,
    "filtering_enabled": True,
    "interval": 24,
    "filters": [],
    "whitelist_filters": [],
    "user_rules": [],
    "rewrites": [],
    "rewrites_enabled": True,
    "querylog": [],
    "stats": {},
}

BLOCKED_REASONS = {"FilteredBlackList", "FilteredBlockedService"}


def now_ms():
    return int(time.time() * 1000)


def rfc3339(ts=None):
    return datetime.fromtimestamp(ts or time.time(), timezone.utc).isoformat()


def parse_time(s):
    """RFC 3339 with optional nanoseconds (AdGuard Home writes nanoseconds)."""
    s = s.strip().replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        s = head + "." + (digits + "000000")[:6] + rest
    return datetime.fromisoformat(s)


class Fake:
    """All state, behind one lock (the real server also serialises changes: controlLock)."""

    def __init__(self, seed):
        st = copy.deepcopy(DEFAULT_STATE)
        st.update(seed)
        self.lock = threading.Lock()
        self.st = st
        self.disabled_until = None  # ms since epoch, a protection pause
        self.sessions = {}  # token hex -> user name
        self.failures = {}  # ip -> [num, until]
        self.next_id = int(time.time())
        for f in st["filters"] + st["whitelist_filters"]:
            f.setdefault("enabled", True)
            f.setdefault("rules_count", 0)
            f.setdefault("id", self.new_id())
            f.setdefault("last_updated", rfc3339())
            f.setdefault("_hash", "")
        for r in st["rewrites"]:
            r.setdefault("enabled", True)
        self.stats = self.full_stats(st.get("stats", {}))

    def new_id(self):
        self.next_id += 1
        return self.next_id

    @staticmethod
    def full_stats(seed):
        stats = {
            "time_units": "hours",
            "num_dns_queries": 0,
            "num_blocked_filtering": 0,
            "num_replaced_safebrowsing": 0,
            "num_replaced_safesearch": 0,
            "num_replaced_parental": 0,
            "avg_processing_time": 0.0,
            "top_queried_domains": [],
            "top_clients": [],
            "top_blocked_domains": [],
            "top_upstreams_responses": [],
            "top_upstreams_avg_time": [],
            "dns_queries": [0] * 24,
            "blocked_filtering": [0] * 24,
            "replaced_safebrowsing": [0] * 24,
            "replaced_parental": [0] * 24,
        }
        stats.update(seed)
        return stats

    # --- the login rate limiter (authratelimiter.go) ---

    def blocked_for(self, ip):
        now = time.time()
        for k in [k for k, v in self.failures.items() if now > v[1]]:
            del self.failures[k]
        entry = self.failures.get(ip)
        if not entry or entry[0] < self.st["max_attempts"]:
            return 0
        return entry[1] - now

    def fail(self, ip):
        now = time.time()
        num, until = self.failures.get(ip, [0, now + FAILED_AUTH_TTL])
        num += 1
        if num >= self.st["max_attempts"]:
            until = now + self.st["block_duration_min"] * 60
        self.failures[ip] = [num, until]

    def check_password(self, name, password):
        return any(
            u["name"] == name and secrets.compare_digest(u["password"], password)
            for u in self.st["users"]
        )

    def protection(self):
        """(enabled, pause left in ms), ending an expired pause as the real server does."""
        if self.disabled_until is not None and now_ms() >= self.disabled_until:
            self.disabled_until = None
            self.st["protection_enabled"] = True
        left = 0 if self.disabled_until is None else max(0, self.disabled_until - now_ms())
        return self.st["protection_enabled"], left


def fetch_list(url):
    """The rules of a filter list: loopback http(s) or an absolute path only."""
    if url.startswith("/"):
        with open(url, "rb") as f:
            data = f.read(MAX_LIST_BYTES)
    else:
        parsed = urllib.parse.urlparse(url)
        host = parsed.hostname or ""
        try:
            loop = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loop = host == "localhost"
        if not loop:
            raise OSError("the fake fetches lists from loopback addresses only")
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as resp:
            data = resp.read(MAX_LIST_BYTES)
    text = data.decode("utf-8", "replace")
    rules = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("!", "#"))
    ]
    return len(rules), hashlib.sha256(data).hexdigest()


def valid_filter_url(url):
    if url.startswith("/"):
        return True
    p = urllib.parse.urlparse(url)
    return p.scheme in ("http", "https") and bool(p.hostname)


class Handler(BaseHTTPRequestHandler):
    server_version = "AdGuardHomeFake"
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, fmt, *args):  # quiet: tests read stdout for "ready"
        pass

    @property
    def fake(self):
        return self.server.fake

    # --- answers ---

    def send(self, code, body=b"", ctype="text/plain; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        if body or code not in (401, 204):
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, text, headers=()):
        # http.Error: text/plain, the message and a newline.
        self.send(code, text + "\n", headers=headers)

    def ok(self):
        self.send(200, "OK\n")

    def json(self, obj):
        self.send(200, json.dumps(obj), "application/json")

    # --- request plumbing ---

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def body_json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise BadRequest(f"json.Decode: {e}")

    def client_ip(self):
        return self.client_address[0]

    def authenticated(self):
        """The user, per authMiddlewareDefault.userFromRequest: cookie first, else Basic."""
        fake = self.fake
        cookies = self.headers.get("Cookie", "")
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "agh_session":
                return fake.sessions.get(value)
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        ip = self.client_ip()
        if fake.blocked_for(ip) > 0:
            # userFromRequestBasicAuth: the refusal while blocked counts as a failure too.
            fake.fail(ip)
            return None
        if fake.check_password(name, password):
            fake.failures.pop(ip, None)
            return name
        fake.fail(ip)
        return None

    def route(self, method):
        self.body = self.read_body()
        if self.body is None:
            self.close_connection = True
            return self.error(413, "request body too large")
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        self.query = urllib.parse.parse_qs(url.query)
        fake = self.fake
        with fake.lock:
            try:
                return self.dispatch(method, path)
            except BadRequest as e:
                return self.error(400, str(e))

    def dispatch(self, method, path):
        fake = self.fake
        st = fake.st
        install = path.startswith("/control/install/")
        if not path.startswith("/control/"):
            return self.error(404, "404 page not found")
        if not st["configured"] and not install:
            # postInstallHandler: Go's http.Redirect resolves "install.html" against the path.
            base = path.rsplit("/", 1)[0]
            return self.send(302, "", headers=[("Location", base + "/install.html")])
        public = install or path == "/control/login"
        if st["configured"] and st["users"] and not public:
            if self.authenticated() is None:
                return self.send(401)
        routes = {
            "/control/status": ("GET", self.status),
            "/control/protection": ("POST", self.set_protection),
            "/control/stats": ("GET", self.get_stats),
            "/control/querylog": ("GET", self.querylog),
            "/control/filtering/status": ("GET", self.filtering_status),
            "/control/filtering/config": ("POST", self.filtering_config),
            "/control/filtering/add_url": ("POST", self.add_url),
            "/control/filtering/remove_url": ("POST", self.remove_url),
            "/control/filtering/set_url": ("POST", self.set_url),
            "/control/filtering/refresh": ("POST", self.refresh),
            "/control/rewrite/list": ("GET", self.rewrite_list),
            "/control/rewrite/add": ("POST", self.rewrite_add),
            "/control/rewrite/delete": ("POST", self.rewrite_delete),
            "/control/rewrite/update": ("PUT", self.rewrite_update),
            "/control/rewrite/settings": ("GET", self.rewrite_settings),
            "/control/rewrite/settings/update": ("PUT", self.rewrite_settings_update),
            "/control/install/get_addresses": ("GET", self.get_addresses),
            "/control/install/configure": ("POST", self.configure),
            "/control/login": ("POST", self.login),
            "/control/logout": ("GET", self.logout),
        }
        if path not in routes:
            return self.error(404, "404 page not found")
        want, handler = routes[path]
        if install and st["configured"]:
            # preInstallHandler: the wizard is gone once it has run.
            return self.error(403, "Forbidden")
        if method != want:
            return self.error(405, f"only method {want} is allowed")
        if method in ("POST", "PUT", "DELETE"):
            ctype = self.headers.get("Content-Type", "")
            if not self.body:
                if ctype:
                    return self.error(415, f'empty body with content-type "{ctype}" not allowed')
            elif ctype != "application/json":
                return self.error(415, "only content-type application/json is allowed")
        return handler()

    # --- global ---

    def status(self):
        st = self.fake.st
        enabled, left = self.fake.protection()
        self.json(
            {
                "version": st["version"],
                "language": st["language"],
                "dns_addresses": ["127.0.0.1"],
                "dns_port": st["dns_port"],
                "http_port": st["http_port"],
                "protection_disabled_duration": left,
                "protection_enabled": enabled,
                "dhcp_available": False,
                "running": True,
                "start_time": float(self.server.started_ms),
            }
        )

    def set_protection(self):
        req = self.body_json()
        if not isinstance(req, dict) or not isinstance(req.get("enabled"), bool):
            raise BadRequest("reading req: enabled is required")
        duration = req.get("duration") or 0
        if not isinstance(duration, int) or duration < 0:
            raise BadRequest("reading req: bad duration")
        if req["enabled"] and duration:
            raise BadRequest("disabling protection with duration is not allowed when enabled is true")
        fake = self.fake
        fake.st["protection_enabled"] = req["enabled"]
        fake.disabled_until = now_ms() + duration if (not req["enabled"] and duration) else None
        self.ok()

    def get_stats(self):
        self.json(self.fake.stats)

    # --- query log ---

    def querylog(self):
        q = self.query
        entries = self.fake.st["querylog"]
        limit = 500
        if "limit" in q:
            try:
                limit = int(q["limit"][0])
            except ValueError:
                pass
        older = None
        if q.get("older_than", [""])[0]:
            try:
                older = parse_time(q["older_than"][0])
            except ValueError as e:
                return self.error(400, f"parsing params: older_than: {e}")
        status = q.get("response_status", ["all"])[0]
        if status not in ("all", "filtered", "blocked", "blocked_services", "blocked_safebrowsing",
                          "blocked_parental", "whitelisted", "rewritten", "safe_search", "processed"):
            return self.error(400, f"parsing params: invalid response_status {status!r}")
        search = q.get("search", [""])[0]
        out = []
        for e in entries:
            if older is not None and parse_time(e["time"]) >= older:
                continue
            if not status_matches(status, e.get("reason", "NotFilteredNotFound")):
                continue
            if search and not search_matches(search, e):
                continue
            out.append(e)
            if len(out) >= limit:
                break
        self.json({"data": out, "oldest": out[-1]["time"] if out else ""})

    # --- filtering ---

    def filter_list(self, whitelist):
        return self.fake.st["whitelist_filters" if whitelist else "filters"]

    @staticmethod
    def shown_filter(f):
        return {k: v for k, v in f.items() if not k.startswith("_")}

    def filtering_status(self):
        st = self.fake.st
        self.json(
            {
                "enabled": st["filtering_enabled"],
                "interval": st["interval"],
                "filters": [self.shown_filter(f) for f in st["filters"]],
                "whitelist_filters": [self.shown_filter(f) for f in st["whitelist_filters"]],
                "user_rules": st["user_rules"],
            }
        )

    def filtering_config(self):
        req = self.body_json()
        if not isinstance(req, dict):
            raise BadRequest("json.Decode: not an object")
        if req.get("interval", 24) not in (0, 1, 12, 24, 72, 168):
            raise BadRequest("Unsupported interval")
        self.fake.st["filtering_enabled"] = bool(req.get("enabled"))
        self.fake.st["interval"] = req.get("interval", 24)
        self.ok()

    def add_url(self):
        req = self.body_json()
        if not isinstance(req, dict):
            raise BadRequest("Failed to parse request body json: not an object")
        url = str(req.get("url", "")).strip()
        if not valid_filter_url(url):
            raise BadRequest(f"checking filter: invalid url: {url!r}")
        lists = self.filter_list(bool(req.get("whitelist")))
        every = self.fake.st["filters"] + self.fake.st["whitelist_filters"]
        if any(f["url"] == url for f in every):
            raise BadRequest(f'Filter with URL "{url}": filter already added')
        if len(lists) >= 1000:
            raise BadRequest("too many filter lists")
        try:
            count, digest = fetch_list(url)
        except OSError as e:
            raise BadRequest(f'Couldn\'t fetch filter from URL "{url}": {e}')
        if count == 0:
            raise BadRequest(f'Filter with URL "{url}" is invalid (maybe it points to blank page?)')
        lists.append(
            {
                "id": self.fake.new_id(),
                "name": str(req.get("name", ""))[:256],
                "url": url,
                "enabled": True,
                "rules_count": count,
                "last_updated": rfc3339(),
                "_hash": digest,
            }
        )
        self.send(200, f"OK {count} rules\n")

    def remove_url(self):
        req = self.body_json()
        if not isinstance(req, dict):
            raise BadRequest("failed to parse request body json: not an object")
        lists = self.filter_list(bool(req.get("whitelist")))
        gone = [f for f in lists if f["url"] == req.get("url")]
        lists[:] = [f for f in lists if f["url"] != req.get("url")]
        self.send(200, f"OK {gone[0]['rules_count'] if gone else 0} rules\n")

    def set_url(self):
        req = self.body_json()
        if not isinstance(req, dict) or not isinstance(req.get("data"), dict):
            raise BadRequest("decoding request: data is required")
        data = req["data"]
        new_url = str(data.get("url", "")).strip()
        if not valid_filter_url(new_url):
            raise BadRequest(f"invalid url: {new_url!r}")
        lists = self.filter_list(bool(req.get("whitelist")))
        found = [f for f in lists if f["url"] == req.get("url")]
        if not found:
            raise BadRequest("filter not found")
        f = found[0]
        f["name"] = str(data.get("name", ""))[:256]
        f["enabled"] = bool(data.get("enabled"))
        if new_url != f["url"]:
            f["url"] = new_url
            try:
                f["rules_count"], f["_hash"] = fetch_list(new_url)
            except OSError as e:
                raise BadRequest(f"fetching: {e}")
        self.ok()

    def refresh(self):
        req = self.body_json() or {}
        updated = 0
        for f in self.filter_list(bool(req.get("whitelist"))):
            if not f["enabled"]:
                continue
            try:
                count, digest = fetch_list(f["url"])
            except OSError:
                continue
            if digest != f["_hash"]:
                updated += 1
                f["rules_count"], f["_hash"] = count, digest
                f["last_updated"] = rfc3339()
        self.json({"updated": updated})

    # --- rewrites ---

    def rewrite_list(self):
        self.json(
            [{"domain": r["domain"], "answer": r["answer"], "enabled": r["enabled"]}
             for r in self.fake.st["rewrites"]]
        )

    def rewrite_entry(self, obj):
        if not isinstance(obj, dict):
            raise BadRequest("json.Decode: not an object")
        domain, answer = obj.get("domain", ""), obj.get("answer", "")
        if not isinstance(domain, str) or not isinstance(answer, str):
            raise BadRequest("json.Decode: domain and answer are strings")
        enabled = obj.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise BadRequest("json.Decode: enabled is a boolean")
        return domain, answer, enabled

    def rewrite_add(self):
        domain, answer, enabled = self.rewrite_entry(self.body_json())
        rewrites = self.fake.st["rewrites"]
        if len(rewrites) >= MAX_ITEMS:
            raise BadRequest("too many rewrites")
        rewrites.append(
            {"domain": domain.lower(), "answer": answer, "enabled": True if enabled is None else enabled}
        )
        self.send(200, "")

    def rewrite_delete(self):
        domain, answer, _ = self.rewrite_entry(self.body_json())
        st = self.fake.st
        st["rewrites"] = [r for r in st["rewrites"] if not (r["domain"] == domain and r["answer"] == answer)]
        self.send(200, "")

    def rewrite_update(self):
        req = self.body_json()
        if not isinstance(req, dict):
            raise BadRequest("json.Decode: not an object")
        t_domain, t_answer, _ = self.rewrite_entry(req.get("target"))
        u_domain, u_answer, u_enabled = self.rewrite_entry(req.get("update"))
        rewrites = self.fake.st["rewrites"]
        for i, r in enumerate(rewrites):
            if r["domain"] == t_domain and r["answer"] == t_answer:
                enabled = r["enabled"] if u_enabled is None else u_enabled
                rewrites[i] = {"domain": u_domain.lower(), "answer": u_answer, "enabled": enabled}
                return self.send(200, "")
        raise BadRequest("target rule not found")

    def rewrite_settings(self):
        self.json({"enabled": self.fake.st["rewrites_enabled"]})

    def rewrite_settings_update(self):
        req = self.body_json()
        if not isinstance(req, dict):
            raise BadRequest("json.Decode: not an object")
        self.fake.st["rewrites_enabled"] = bool(req.get("enabled"))
        self.send(200, "")

    # --- first run and sessions ---

    def get_addresses(self):
        st = self.fake.st
        self.json(
            {
                "version": st["version"],
                "dns_port": 53,
                "web_port": st["default_web_port"],
                "interfaces": {
                    "lo": {
                        "flags": "up|loopback",
                        "hardware_address": "",
                        "ip_addresses": ["127.0.0.1", "::1"],
                        "mtu": 65536,
                        "name": "lo",
                    }
                },
            }
        )

    def configure(self):
        req = self.body_json()
        if not isinstance(req, dict):
            raise BadRequest("json.Decode: not an object")
        for part in ("web", "dns"):
            addr = req.get(part)
            if not isinstance(addr, dict) or not isinstance(addr.get("port"), int):
                raise BadRequest(f"{part}: address and port are required")
        name, password = req.get("username"), req.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or not name:
            raise BadRequest("username and password are required")
        if len(password) < PASSWORD_MIN_RUNES:
            return self.error(422, f"password must be at least {PASSWORD_MIN_RUNES} symbols long")
        st = self.fake.st
        st["configured"] = True
        st["users"] = [{"name": name, "password": password}]
        st["dns_port"] = req["dns"]["port"]
        st["http_port"] = req["web"]["port"]
        self.send(200, "")

    def login(self):
        fake = self.fake
        req = self.body_json()
        if not isinstance(req, dict):
            raise BadRequest("json decode: not an object")
        ip = self.client_ip()
        left = fake.blocked_for(ip)
        if left > 0:
            return self.error(429, f"auth: blocked for {int(left)}s", headers=[("Retry-After", str(int(left)))])
        if not fake.check_password(str(req.get("name", "")), str(req.get("password", ""))):
            fake.fail(ip)
            return self.error(403, "invalid username or password")
        fake.failures.pop(ip, None)
        token = secrets.token_hex(16)
        fake.sessions[token] = req["name"]
        cookie = f"agh_session={token}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"
        self.send(200, "OK\n", headers=[("Set-Cookie", cookie), ("Cache-Control", "no-store")])

    def logout(self):
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "agh_session":
                self.fake.sessions.pop(value, None)
        self.send(302, "", headers=[("Location", "/login.html"),
                                    ("Set-Cookie", "agh_session=; Path=/; Max-Age=0; HttpOnly")])


class BadRequest(Exception):
    pass


def status_matches(status, reason):
    if status == "all":
        return True
    if status == "blocked":
        return reason in BLOCKED_REASONS
    if status == "blocked_services":
        return reason == "FilteredBlockedService"
    if status == "blocked_safebrowsing":
        return reason == "FilteredSafeBrowsing"
    if status == "blocked_parental":
        return reason == "FilteredParental"
    if status == "safe_search":
        return reason == "FilteredSafeSearch"
    if status == "whitelisted":
        return reason == "NotFilteredWhiteList"
    if status == "rewritten":
        return reason in ("Rewrite", "RewriteEtcHosts", "RewriteRule")
    if status == "filtered":
        return reason.startswith("Filtered") or reason == "NotFilteredWhiteList" or reason.startswith("Rewrite")
    if status == "processed":
        return reason not in BLOCKED_REASONS
    return False


def search_matches(term, entry):
    host = entry.get("question", {}).get("name", "")
    client = entry.get("client", "")
    client_id = entry.get("client_id", "")
    name = (entry.get("client_info") or {}).get("name", "")
    fields = (host, client, client_id, name)
    if len(term) >= 2 and term.startswith('"') and term.endswith('"'):
        t = term[1:-1].lower()
        return any(f.lower() == t for f in fields)
    t = term.lower()
    return any(t in f.lower() for f in fields)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--state", help="a JSON file of state to start from (see DEFAULT_STATE)")
    args = ap.parse_args()
    seed = {}
    if args.state:
        with open(args.state, encoding="utf-8") as f:
            seed = json.load(f)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.fake = Fake(seed)
    server.started_ms = now_ms()
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
