#!/usr/bin/env python3
"""Floods a release homelabd the way one laptop on the LAN could, and reports for each flood
the daemon's RSS before, at its peak during, and 10 s after, plus how long the sign-in page
took to answer the owner (from 127.0.0.1) while the flood ran.

Usage: benches/abuse.py [path/to/release/homelabd]   (Linux, Python 3 standard library, prlimit)

The daemon runs with systemd's default open-files limit (soft 1024) so figures match what the
appliance would see without its own LimitNOFILE. Floods come from other loopback addresses
(127.0.0.x routes to lo), the owner from 127.0.0.1.
"""

import asyncio
import os
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/homelabd"
SETTLE = 10  # seconds after a flood before the "after" RSS is read
GUARD = 15  # seconds an owner request may take before it counts as timed out
HOST = "127.0.0.1"  # the Host header of requests to the HTTPS port; set once the port is known

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Daemon:
    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="abuse-bench-")
        self.http, self.https = free_port(), free_port()
        self.log = open(self.data + ".log", "wb")
        env = dict(os.environ, HOMELAB_MDNS="off", RUST_LOG=os.environ.get("RUST_LOG", "info"))
        # systemd's default soft limit (1024); the daemon may raise its own soft limit.
        self.proc = subprocess.Popen(
            ["prlimit", f"--nofile=1024:{hard}", BIN, "run",
             "--listen", f"127.0.0.1:{self.http}", "--tls-listen", f"127.0.0.1:{self.https}",
             "--data", self.data],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.http), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    if b"200" in s.recv(100):
                        break
            except OSError:
                time.sleep(0.05)
        self.pid = self.proc.pid  # prlimit execs the daemon: same pid

    def rss_mb(self):
        with open(f"/proc/{self.pid}/status") as f:
            kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        return kb / 1024

    def log_bytes(self):
        self.log.flush()
        return os.path.getsize(self.log.name)

    def db_bytes(self):
        return sum(os.path.getsize(os.path.join(self.data, f)) for f in os.listdir(self.data)
                   if f.startswith("homelab.db"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)
        os.unlink(self.log.name)


TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


async def request(port, raw, tls=False, src="127.0.0.1", timeout=GUARD):
    """One HTTP/1.1 exchange; returns (seconds, status, body) or (None, None, None) on timeout."""
    start = time.monotonic()
    try:
        async def go():
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=TLS if tls else None,
                                                 local_addr=(src, 0),
                                                 server_hostname="homelab.local" if tls else None)
            w.write(raw)
            await w.drain()
            data = await r.read()
            w.close()
            return data
        data = await asyncio.wait_for(go(), timeout)
    except (asyncio.TimeoutError, OSError) as e:
        if os.environ.get("ABUSE_DEBUG"):
            print("request failed:", repr(e), file=sys.stderr)
        return None, None, None
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    return time.monotonic() - start, status, data


def get(path, host=None):
    host = host or HOST
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


def get_with_cookie(path, cookie):
    return (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
            f"Cookie: {cookie}\r\n\r\n").encode()


def post(path, form, origin, host=None, cookie=None):
    host = host or HOST
    body = urllib.parse.urlencode(form).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n")
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    return (head + "\r\n").encode() + body


async def owner_latency(d, samples=5):
    """The sign-in page over HTTPS, as the owner's browser would fetch it, and /healthz over
    plain HTTP (what the appliance's own health check asks)."""
    async def series(port, raw, tls):
        times = []
        for _ in range(samples):
            t, status, _ = await request(port, raw, tls=tls)
            times.append(t if status == 200 else None)
        ok = [t for t in times if t is not None]
        if not ok:
            return f"no answer in {GUARD} s ({samples}/{samples})"
        failed = samples - len(ok)
        return f"median {statistics.median(ok)*1000:.0f} ms, max {max(ok)*1000:.0f} ms" + \
            (f", {failed}/{samples} unanswered" if failed else "")
    page = await series(d.https, get("/login"), True)
    health = await series(d.http, get("/healthz", "127.0.0.1"), False)
    return f"sign-in {page}; /healthz {health}"


async def watch_rss(d, stop):
    peak = 0
    while not stop.is_set():
        try:
            peak = max(peak, d.rss_mb())
        except OSError:
            break
        await asyncio.sleep(0.05)
    return peak


async def measure(d, name, flood, hold=3):
    """Runs `flood` (a coroutine factory returning a cleanup), samples RSS and owner latency."""
    before = d.rss_mb()
    log0 = d.log_bytes()
    stop = asyncio.Event()
    peak_task = asyncio.create_task(watch_rss(d, stop))
    if hold:  # a flood of held sockets: set it up, let it sit, then ask
        cleanup = await flood()
        await asyncio.sleep(hold)
        during = await owner_latency(d)
    else:  # a flood of requests: ask while they run
        async def owner_soon():
            # Measured, not waited for: the flood's requests are in flight by then.
            await asyncio.sleep(0.3)
            return await owner_latency(d)
        during, cleanup = await asyncio.gather(owner_soon(), flood())
    stop.set()
    peak = await peak_task
    if cleanup:
        await cleanup()
    await asyncio.sleep(SETTLE)
    after = d.rss_mb()
    print(f"| {name} | {before:.1f} / {peak:.1f} / {after:.1f} MB | {during} | "
          f"{(d.log_bytes()-log0)/1024:.0f} KiB |", flush=True)


async def hold_sockets(port, per_source, sources, payload=b""):
    """Opens per_source × sources connections that then sit; returns their cleanup."""
    socks, failed = [], 0
    for i in range(sources):
        src = f"127.0.0.{10 + i}"
        for _ in range(per_source):
            s = socket.socket()
            s.settimeout(2)  # a server that stopped accepting must not stall the bench
            try:
                s.bind((src, 0))
                s.connect(("127.0.0.1", port))
                if payload:
                    s.send(payload)
                s.setblocking(False)
                socks.append(s)
            except OSError:
                failed += 1
                s.close()
        await asyncio.sleep(0)
    if failed:
        print(f"|   ↳ {failed} of the flood's connections could not be opened | | | |", flush=True)

    async def cleanup():
        for s in socks:
            s.close()
    return cleanup


async def main():
    global HOST
    d = Daemon()
    HOST = f"127.0.0.1:{d.https}"
    origin = f"https://127.0.0.1:{d.https}"
    pw = "bench-" + os.urandom(9).hex()
    _, status, data = await request(d.https, post("/setup", {"username": "admin", "password": pw,
                                                             "password_confirm": pw}, origin), tls=True)
    assert status == 303, f"claim failed: {status}"
    cookie = re.search(rb"[Ss]et-[Cc]ookie: ([^;]+)", data).group(1).decode()
    _, _, page = await request(d.https, get_with_cookie("/settings", cookie), tls=True)
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    await request(d.https, post("/settings/mode", {"mode": "advanced", "csrf_token": csrf}, origin,
                                cookie=cookie), tls=True)
    _, _, page = await request(d.https, post("/settings/tokens", {"name": "bench", "csrf_token": csrf},
                                             origin, cookie=cookie), tls=True)
    token = re.search(rb'id="new-token">([^<]+)<', page).group(1).decode()
    print(f"binary: {BIN}")
    print(f"idle RSS after claim: {d.rss_mb():.1f} MB; sign-in page with no flood: {await owner_latency(d)}")
    print()
    print("| flood | RSS before / peak / 10 s after | owner's sign-in page during it | log written |")
    print("|---|---|---|---|")

    await measure(d, "2,000 idle TCP to HTTPS (20 addresses × 100)",
                  lambda: hold_sockets(d.https, 100, 20))
    await measure(d, "2,000 idle TCP to HTTPS from one address",
                  lambda: hold_sockets(d.https, 2000, 1))
    await measure(d, "1,100 half-sent requests to HTTP (11 addresses × 100), held 12 s",
                  lambda: hold_sockets(d.http, 100, 11, b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
                  hold=12)

    async def guesses(n, sources):
        async def flood():
            tasks = [request(d.https, post("/login", {"username": "admin", "password": f"wrong-{i}"}, origin),
                             tls=True, src=f"127.0.0.{10 + (i % sources)}", timeout=60)
                     for i in range(n)]
            results = await asyncio.gather(*tasks)
            counts = {}
            for _, status, _ in results:
                counts[status] = counts.get(status, 0) + 1
            print(f"|   ↳ {n} wrong sign-ins from {sources} address(es): statuses {counts} | | | |", flush=True)
            return None
        return flood
    await measure(d, "40 simultaneous wrong sign-ins, one address", await guesses(40, 1), hold=0)
    await measure(d, "100 simultaneous wrong sign-ins, 100 addresses", await guesses(100, 100), hold=0)

    async def big_usernames():
        db0 = d.db_bytes()
        name = "x" * (1900 * 1024)
        for i in range(20):
            await request(d.https, post("/login", {"username": name, "password": "nope-nope-nope"}, origin),
                          tls=True, src=f"127.0.0.{200 + i}", timeout=60)
        # The Settings page's size, signed in (the claim's session).
        _, _, page = await request(d.https, get_with_cookie("/settings", cookie), tls=True)
        size = f"{len(page or b'')/1024:.0f} KiB"
        print(f"|   ↳ 20 sign-ins with 1.9 MB usernames: database +{(d.db_bytes()-db0)/1024/1024:.1f} MB, "
              f"Settings page {size} | | | |", flush=True)
        return None
    await measure(d, "20 sign-ins with 1.9 MB usernames", big_usernames, hold=0)

    async def metrics_size():
        raw = (f"GET /metrics HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
        _, status, page = await request(d.https, raw, tls=True)
        return f"{len(page or b'')/1024:.0f} KiB" if status == 200 else f"status {status}"

    async def methods():
        m0 = await metrics_size()
        for i in range(3000):
            raw = f"X{i:05d} / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            await request(d.https, raw, tls=True, src=f"127.0.0.{30 + i % 50}")
        print(f"|   ↳ /metrics {m0} before, {await metrics_size()} after | | | |", flush=True)
        return None
    await measure(d, "3,000 requests with made-up methods", methods, hold=0)
    d.stop()


asyncio.run(main())
