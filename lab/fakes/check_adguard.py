#!/usr/bin/env python3
"""Proves lab/fakes/adguard.py faithful: drives it with the independent client Home Assistant
uses, PyPI `adguardhome` (pinned in tests/run-all), which was written against the real AdGuard
Home. Every call that library makes for status, protection, stats, query log, filter lists and
rewrites must work, and its view of the answers must match what was seeded or changed.

Starts its own fake (seeded) and a loopback web server for a filter list, so it needs nothing
but python3 and the library. Exits non-zero, with the failed check, on any mismatch.

Run: python3 lab/fakes/check_adguard.py
"""

import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from adguardhome import AdGuardHome
from adguardhome.exceptions import AdGuardHomeAuthenticationError, AdGuardHomeResponseError

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "check-fake-password"
LIST_RULES = ["||ads.example^", "||tracker.example^", "! a comment", "||more.example^"]


def seed():
    log = []
    for i in range(30):
        blocked = i % 3 == 0
        log.append(
            {
                "time": f"2026-12-05T10:{59 - i:02d}:00.123456789Z",
                "question": {"name": f"host{i}.example", "type": "A", "class": "IN"},
                "client": "192.168.1.10" if i % 2 else "192.168.1.20",
                "client_proto": "",
                "reason": "FilteredBlackList" if blocked else "NotFilteredNotFound",
                "rules": [{"text": "||host.example^", "filter_list_id": 1}] if blocked else [],
                "status": "NOERROR",
                "answer": [] if blocked else [{"type": "A", "value": "192.0.2.1", "ttl": 60}],
                "upstream": "" if blocked else "https://dns.example/dns-query",
                "cached": False,
                "elapsedMs": "0.5",
                "answer_dnssec": False,
            }
        )
    return {
        "users": [{"name": "admin", "password": PASSWORD}],
        "querylog": log,
        "stats": {"num_dns_queries": 1204, "num_blocked_filtering": 144, "avg_processing_time": 0.012},
        "rewrites": [{"domain": "nas.lan", "answer": "192.168.1.5"}],
    }


class ListHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = "\n".join(LIST_RULES).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


async def drive(url, list_url):
    async with AdGuardHome(url, username="admin", password="wrong-password", request_timeout=5) as bad:
        try:
            await bad.status()
            check(False, "a wrong password is refused")
        except AdGuardHomeAuthenticationError:
            check(True, "a wrong password is refused")

    async with AdGuardHome(url, username="admin", password=PASSWORD, request_timeout=5) as agh:
        status = await agh.status()
        check(status.running and status.protection_enabled, "status: running, protection on")
        check(status.supported, f"status: version {status.version} is one the library supports")

        await agh.disable_protection(timedelta(minutes=10))
        status = await agh.status()
        check(not status.protection_enabled, "protection paused")
        check(status.protection_resumes_in is not None and status.protection_resumes_in > timedelta(minutes=9),
              "the pause has its time left")
        await agh.enable_protection()
        check((await agh.status()).protection_enabled, "protection back on")
        await agh.disable_protection()
        status = await agh.status()
        check(not status.protection_enabled and status.protection_resumes_in is None, "protection off, no pause")
        await agh.enable_protection()

        stats = await agh.stats.get()
        check(stats.dns_queries == 1204 and stats.blocked_filtering == 144, "stats as seeded")
        check(abs(stats.blocked_percentage - 144 / 1204 * 100) < 1e-9, "blocked share")

        log = await agh.querylog.get(limit=10)
        check(len(log.entries) == 10, "query log: limit")
        check(log.entries[0].question.name == "host0.example", "query log: newest first")
        page2 = await agh.querylog.get(limit=10, older_than=log.cursor)
        check(page2.entries[0].question.name == "host10.example", "query log: older_than pages on")
        found = await agh.querylog.get(search="host7.")
        check([e.question.name for e in found.entries] == ["host7.example"], "query log: search")
        check(log.entries[0].filtered and not log.entries[1].filtered, "query log: blocked reason read")

        blocklists = agh.filtering.blocklists
        await blocklists.add(list_url, name="Test list")
        lists = await blocklists.list()
        check([(f.name, f.rules_count, f.enabled) for f in lists] == [("Test list", 3, True)], "filter list added")
        try:
            await blocklists.add(list_url, name="Again")
            check(False, "a filter list added twice is refused")
        except AdGuardHomeResponseError as e:
            check(e.status == 400, "a filter list added twice is refused")
        await blocklists.disable(list_url)
        check(not (await blocklists.get(list_url)).enabled, "filter list disabled")
        await blocklists.enable(list_url)
        check((await blocklists.get(list_url)).enabled, "filter list enabled")
        check(await blocklists.refresh() == 0, "refresh: nothing changed")
        await blocklists.remove(list_url)
        check(await blocklists.list() == (), "filter list removed")
        await agh.filtering.disable()
        check(not (await agh.filtering.get()).enabled, "filtering off")
        await agh.filtering.enable()

        rules = await agh.rewrite.get()
        check([(r.domain, r.answer, r.enabled) for r in rules] == [("nas.lan", "192.168.1.5", True)],
              "rewrites as seeded")
        await agh.rewrite.add("Jellyfin.Home.Arpa", "10.0.0.7")
        await agh.rewrite.update("jellyfin.home.arpa", "10.0.0.7", new_answer="10.0.0.8")
        await agh.rewrite.update("jellyfin.home.arpa", "10.0.0.8", enabled=False)
        rules = await agh.rewrite.get()
        check(("jellyfin.home.arpa", "10.0.0.8", False) in [(r.domain, r.answer, r.enabled) for r in rules],
              "rewrite added (lower-cased), updated, disabled")
        await agh.rewrite.remove("jellyfin.home.arpa", "10.0.0.8")
        check(len(await agh.rewrite.get()) == 1, "rewrite removed")
        await agh.rewrite.disable()
        check(not (await agh.rewrite.config()).enabled, "rewrites off")
        await agh.rewrite.enable()


def raw(url, method="GET", body=None, headers=None):
    """One request as-is, for the answers the library hides (status, empty body)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def protocol_checks(url):
    """The real server's answers the fake must give (internal/home/control.go, authhttp.go)."""
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
    code, body, _ = raw(url + "/control/status")
    check(code == 401 and body == b"", "unauthenticated status: 401 with an empty body")
    code, body, _ = raw(url + "/control/protection", "POST", b'{"enabled":true}',
                        {**auth, "Content-Type": "text/plain"})
    check(code == 415 and b"only content-type application/json" in body, "wrong content type: 415")
    code, _, _ = raw(url + "/control/protection", "POST", b'{"enabled":true}',
                     {**auth, "Content-Type": "application/json; charset=utf-8"})
    check(code == 415, "content type must be exactly application/json")
    code, body, _ = raw(url + "/control/status", "POST", None, auth)
    check(code == 405 and b"only method GET" in body, "wrong method: 405")
    code, body, _ = raw(url + "/control/login", "POST", b'{"name":"admin","password":"nope"}',
                        {"Content-Type": "application/json"})
    check(code == 403 and b"invalid username or password" in body, "wrong login: 403")
    code, _, headers = raw(url + "/control/login", "POST",
                           json.dumps({"name": "admin", "password": PASSWORD}).encode(),
                           {"Content-Type": "application/json"})
    cookie = headers.get("Set-Cookie", "").split(";")[0]
    check(code == 200 and cookie.startswith("agh_session="), "login sets agh_session")
    code, _, _ = raw(url + "/control/status", headers={"Cookie": cookie})
    check(code == 200, "the session cookie signs requests in")
    code, _, _ = raw(url + "/control/install/get_addresses")
    check(code == 403, "the setup wizard is gone once set up: 403")


def main():
    lists = ThreadingHTTPServer(("127.0.0.1", 0), ListHandler)
    threading.Thread(target=lists.serve_forever, daemon=True).start()
    list_url = f"http://127.0.0.1:{lists.server_address[1]}/list.txt"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(seed(), f)
        state = f.name
    fake = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "adguard.py"), "--port", "0", "--state", state],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = fake.stdout.readline().split()
        if line[:1] != ["ready"]:
            raise SystemExit("FAIL: the fake did not start")
        protocol_checks(f"http://127.0.0.1:{line[1]}")
        asyncio.run(drive(f"http://127.0.0.1:{line[1]}", list_url))
        print("PASS: the adguardhome library works with the fake")
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        os.unlink(state)
        lists.shutdown()


if __name__ == "__main__":
    main()
