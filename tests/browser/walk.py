"""Headless Chromium walk through the real daemon: claim -> dashboard -> sections -> settings
(advanced mode, API token, live events) -> updates -> add a lab device -> install an app ->
back it up to an SSH server and restore it -> move it to another device and back -> remove it ->
a cable pulled while an app starts -> install Docker -> sign out -> sign in -> phone width -> sign
out.

Fails on any browser console error or page error. Screenshots go to
tests/artifacts/screenshots/. Uses Debian's chromium through Playwright (no browser download).
"""

import functools
import hashlib
import http.server
import json
import os
import threading
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("HOMELAB_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
SHOTS = ARTIFACTS / "screenshots"
BIN = Path(os.environ.get("HOMELABD_BIN", ROOT / "target" / "debug" / "homelabd"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Flags that keep Chromium from reaching for the (absent) internet.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def lab_env():
    """LAB_* values from lab/lab env (the lab is up during the suite)."""
    out = subprocess.run([str(ROOT / "lab" / "lab"), "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remember_secret(value):
    d = ARTIFACTS / "secrets"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"browser-{os.getpid()}.txt", "a") as f:
        f.write(value + "\n")


def wait_healthy(base, proc, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("homelabd exited during start")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("homelabd did not become healthy")


def serve_channel(version):
    """An update channel on this machine (the daemon fetches its manifest): returns its URL."""
    root = ARTIFACTS / "walk-channel"
    root.mkdir(parents=True, exist_ok=True)
    bundle = b"not a real bundle: the walk only checks the channel"
    (root / "manifest.json").write_text(json.dumps({
        "version": version, "url": f"homelab-{version}.raucb", "size": len(bundle),
        "sha256": hashlib.sha256(bundle).hexdigest(),
        "notes": "Walk release.\nSecond line of the notes.",
    }))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/manifest.json"


def write_slow_recipe(data):
    """A user recipe whose health check never passes (the lab's stand-in answers 404 on
    /never): its install waits in "Waiting for the app to answer" until the walk pulls the
    device's cable."""
    d = data / "recipes" / "lab-slow"
    d.mkdir(parents=True, exist_ok=True)
    (d / "manifest.yaml").write_text(
        "name: Slow Starter\nslug: lab-slow\nversion: \"1.0\"\ncategory: Test\n"
        "description: A lab stand-in that never finishes starting.\nwebsite: https://example.org\n"
        "requirements: {ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, "
        "storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}\n"
        "architectures: [amd64, arm64]\n"
        "web: {service: web, port: 8080, path: /}\nhealth: {path: /never, status: 200}\n"
        "data_volumes: []\n"
        "settings:\n  - {name: HTTP_PORT, label: Which port to use, kind: port, default: \"18140\"}\n")
    (d / "compose.yaml").write_text(
        "services:\n  web:\n    image: example/lab-web:1.0\n    ports:\n      - \"${HTTP_PORT}:8080\"\n")


class HeldEvents:
    """Holds the page's live-event stream back while something happens, then lets it open:
    whatever the page missed meanwhile must show anyway (the stream's first event says what
    changed), with no reload and no poll (the walk's daemon polls devices once an hour)."""

    def __init__(self, page):
        self.page = page
        self.held = []

    def __enter__(self):
        self.page.route("**/events", lambda route: self.held.append(route))
        return self

    def __exit__(self, *exc):
        for route in self.held:
            try:
                route.continue_()
            except Exception as e:  # noqa: BLE001 - a stream the page gave up on meanwhile
                if "already handled" not in str(e):
                    raise
        self.page.unroute("**/events")
        return False


def device_state(page, base, name):
    devices = page.request.get(base + "/api/v1/devices").json()
    for d in devices if isinstance(devices, list) else devices.get("devices", []):
        if d.get("name") == name:
            return d.get("status") or d.get("state")
    return None


def wait_until(what, deadline_s, check):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")


def fill_device_form(page, name, ip, lab):
    """The add-device form, filled as a user would with the lab's device login, then tested."""
    page.fill("#name", name)
    page.fill("#host", ip)
    page.fill("#username", lab["LAB_USER"])
    page.fill("#password", lab["LAB_PASSWORD"])
    page.click("#test-connection")


class Walk:
    def __init__(self, page, base):
        self.page = page
        self.base = base
        self.problems = []
        self.passed = 0
        # Console errors we provoke on purpose, each allowed exactly once.
        self.expected = []
        # The step under way, named with each console error so a failure points at it.
        self.current = ""
        page.on("console", self.on_console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def on_console(self, m):
        if m.type != "error":
            return
        text = f"{m.text} ({m.location.get('url', '')})"
        for i, exp in enumerate(self.expected):
            if exp in text:
                del self.expected[i]
                return
        self.problems.append(f"[{self.current}] console: {text}")

    def shot(self, name, page=None):
        SHOTS.mkdir(parents=True, exist_ok=True)
        # caret="initial": by default Playwright hides the text caret with an inline style and
        # leaves style="" behind, which htmx then carries onto swapped-in inputs, and the
        # page's CSP (rightly) blocks: a console error the product never causes.
        (page or self.page).screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")

    def step(self, name, fn):
        self.current = name
        fn()
        self.passed += 1
        print(f"  ok  {name}", flush=True)


def open_trusted(p, page, base, href, ip):
    """The success link in a Chromium that trusts the homelab's root (installed in its NSS
    database, as Settings → Trust this homelab tells a Linux owner) and resolves the app's
    .local name to its device: the page loads over HTTPS with no certificate warning. The same
    link in the walk's own browser, which does not trust the root, is refused: the trust is
    what makes it load."""
    root = page.request.get(base + "/settings/trust/homelab-root.pem")
    assert root.status == 200, root.status
    home = ARTIFACTS / "chromium-home"
    subprocess.run(["rm", "-rf", str(home)], check=True)
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    (home / "homelab-root.pem").write_bytes(root.body())
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "Homelab root",
                    "-i", str(home / "homelab-root.pem")], check=True)
    host = href.split("/")[2]
    rules = f"--host-resolver-rules=MAP {host} {ip}"
    trusting = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [rules],
                                  headless=True, env={**os.environ, "HOME": str(home)})
    try:
        tab = trusting.new_page()
        res = tab.goto(href, timeout=30000)
        assert res is not None and res.status == 200, res and res.status
        assert tab.url.startswith(f"https://{host}/"), tab.url
        tab.screenshot(path=str(SHOTS / "08b1-app-over-https.png"))
    finally:
        trusting.close()
    untrusting = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [rules],
                                    headless=True)
    try:
        try:
            untrusting.new_page().goto(href, timeout=30000)
            raise AssertionError("a browser without the root loaded the page")
        except Exception as e:  # noqa: BLE001 - the refusal is what is checked
            assert "ERR_CERT" in str(e), e
    finally:
        untrusting.close()


def main():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = ARTIFACTS / "data" / f"browser-{secrets.token_hex(4)}"
    data.mkdir(parents=True, exist_ok=True)
    logs = ARTIFACTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "browser-daemon.log", "w")
    write_slow_recipe(data)
    # Devices are polled once an hour: every live change the walk sees comes from the change
    # itself (a first check, a re-check after an install), never from a poll that happens to
    # come by.
    proc = subprocess.Popen(
        [str(BIN), "run", "--listen", f"127.0.0.1:{port}", "--data", str(data),
         "--poll-interval", "3600"],
        stdout=log, stderr=subprocess.STDOUT,
        # Names are announced over mDNS on the lab's network, as on a home LAN without a DNS server.
        env={**os.environ, "RUST_LOG": "debug", "HOMELAB_MDNS": "on", "HOMELAB_MDNS_INTERFACES": "hlab0"},
    )
    password = "browser-" + secrets.token_urlsafe(12)
    remember_secret(password)
    failed = 0
    try:
        wait_healthy(base, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            # A time zone away from UTC: the update window's times are the owner's.
            ctx = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Asia/Kolkata")
            page = ctx.new_page()
            w = Walk(page, base)

            def claim():
                page.goto(base + "/")
                expect(page).to_have_url(base + "/setup")
                expect(page.locator("h1")).to_have_text("Welcome — let's set up your homelab")
                w.shot("01-setup")
                page.fill("#username", "admin")
                page.fill("#password", password)
                page.fill("#password_confirm", password)
                page.click("button[type=submit]")
                expect(page).to_have_url(base + "/")
                expect(page.locator("h1")).to_have_text("Your homelab")
                w.shot("02-dashboard")

            def sections():
                page.click("#nav >> text=Devices")
                expect(page).to_have_url(base + "/devices")
                expect(page.locator("#main h2")).to_have_text("No devices yet")
                expect(page.locator("#nav a[aria-current=page]")).to_have_text("Devices")
                w.shot("03-devices")
                page.click("#nav >> text=Apps")
                expect(page.locator("#app-grid [data-app='vaultwarden']")).to_be_visible()
                # Type only once htmx has wired up the swapped-in search box.
                page.wait_for_function("() => document.querySelector('#app-search')['htmx-internal-data'] !== undefined")
                page.fill("#app-search", "photos")
                expect(page.locator("#app-grid [data-app]")).to_have_count(1)
                expect(page.locator("#app-grid [data-app='immich']")).to_be_visible()
                w.shot("03b-apps-search")
                page.click("#app-grid [data-app='immich']")
                expect(page.locator("#deploy-form h2")).to_have_text("Install Immich")
                # The placement loads after the page ("Analyzing your homelab…").
                expect(page.locator("#placement")).to_contain_text("Add a device first")
                for name, words in [("Network", "App names"), ("Backups", "Backups are not set up")]:
                    page.click(f"#nav >> text={name}")
                    expect(page.locator("#main h2").first).to_have_text(words)
                page.go_back()
                expect(page).to_have_url(base + "/network")

            def settings_advanced_and_live_events():
                page.click("#nav >> text=Settings")
                expect(page).to_have_url(base + "/settings")
                page.click("button.seg:has-text('Advanced')")
                expect(page.locator("body")).to_have_attribute("data-mode", "advanced")
                expect(page.locator("#tokens h2")).to_have_text("API tokens")
                page.fill("#token_name", "Browser walk")
                page.fill("#token_password", password)
                page.click("#token-form button[type=submit]")
                token = page.locator("#new-token")
                expect(token).to_contain_text("hlt_")
                remember_secret(token.inner_text().strip())
                # The toast and the new activity row arrive over the live event stream.
                expect(page.locator("#toasts .toast-success")).to_contain_text("Browser walk")
                expect(page.locator("#audit-rows tr").first).to_contain_text("Created API token")
                w.shot("04-settings-advanced")

            def updates_page():
                # Off the appliance the page says why updates are not available here. (The
                # previous step ends on Settings.)
                expect(page).to_have_url(base + "/settings")
                page.click("#open-updates")
                expect(page).to_have_url(base + "/settings/updates")
                expect(page.locator("#update-version")).to_have_text(re.compile(r"\d+\.\d+"))
                expect(page.locator("#update-unavailable")).to_be_visible()
                w.shot("04b-updates")

            def update_channel():
                # Set a channel with an update window; the box asks it at once and shows the
                # offer with its notes; the window is in the browser's time zone (UTC+05:30).
                channel = serve_channel("99.1.0")
                page.fill("#channel-url", channel)
                page.check("#channel-automatic")
                page.fill("#channel-start", "02:00")
                page.fill("#channel-end", "04:30")
                page.click("#channel-save")
                expect(page.locator("#channel-saved")).to_have_text("Saved.")
                expect(page.locator("#update-offered")).to_contain_text("Homelab 99.1.0 is available")
                expect(page.locator("#update-notes")).to_contain_text("Second line of the notes.")
                expect(page.locator("#update-check")).to_contain_text("automatic updates 02:00–04:30 (UTC+05:30)")
                page.click("#update-check-button")
                expect(page.locator("#update-offered")).to_contain_text("99.1.0")
                w.shot("04c-update-channel")
                # Off again: the check card goes.
                page.fill("#channel-url", "")
                page.uncheck("#channel-automatic")
                page.click("#channel-save")
                expect(page.locator("#channel-saved")).to_have_text("Saved.")
                expect(page.locator("#update-check")).to_have_count(0)

            def history_export_import():
                # Settings → History: the update channel set two steps ago is a revision; its
                # page shows what reverting to it does, and the revert makes it (through the
                # Updates page's own action), then the channel goes off again as before.
                page.goto(base + "/settings")
                page.click("#open-history")
                expect(page).to_have_url(base + "/settings/history")
                row = page.locator("#history-table tr", has_text="Set the update channel to").first
                expect(row).to_contain_text("admin")
                row.locator("a").click()
                expect(page.locator("#revision-changed")).to_contain_text("Update channel: off →")
                expect(page.locator("#revert-plan")).to_contain_text("Update channel")
                page.click("#revert-form button")
                expect(page.locator("#revert-done")).to_contain_text("Reverted: 1 change made")
                w.shot("04d-history-revert")
                page.goto(base + "/settings/updates")
                expect(page.locator("#channel-url")).not_to_have_value("")
                page.fill("#channel-url", "")
                page.uncheck("#channel-automatic")
                page.click("#channel-save")
                expect(page.locator("#channel-saved")).to_have_text("Saved.")
                # Export and import: the file downloads sealed with its passphrase; choosing it
                # again here and typing the passphrase shows what it would change, and why
                # this box (which has a device) cannot take it. It is this box's own file, so nothing
                # would change.
                page.goto(base + "/settings")
                page.click("#open-configuration")
                expect(page).to_have_url(base + "/settings/configuration")
                phrase = "walk configuration passphrase"
                remember_secret(phrase)
                page.fill("#export_passphrase", phrase)
                page.fill("#export_confirm", phrase)
                page.fill("#export_password", password)
                with page.expect_download() as got:
                    page.click("#export-form button[type=submit]")
                saved = str(ARTIFACTS / "walk-configuration.json")
                got.value.save_as(saved)
                with open(saved, encoding="utf-8") as f:
                    exported = json.load(f)
                assert exported["format"] == "homelab-configuration", exported.keys()
                assert any(d["name"] == "Server Two" for d in exported["state"]["tables"]["devices"]), exported["state"]
                page.set_input_files("#import-file", saved)
                page.click("#import-form button[type=submit]")
                page.fill("#import_passphrase", phrase)
                page.click("#import-open button[type=submit]")
                expect(page.locator("#import-panel")).to_contain_text("Nothing: this box is already set up this way.")
                expect(page.locator("#import-refused")).to_contain_text("already has 1 device.")
                w.shot("04e-import-preview")
                # A file that is not a configuration is refused as it arrives, in words, before
                # any passphrase is asked for.
                other = str(ARTIFACTS / "walk-not-a-configuration.txt")
                with open(other, "w", encoding="utf-8") as f:
                    f.write("shopping list\n")
                page.set_input_files("#import-file", other)
                # The refusal answers 422, which Chromium reports on the console.
                w.expected.append("status of 422")
                page.click("#import-form button[type=submit]")
                expect(page.locator("#import-form [role=status]")).to_contain_text("not a Homelab configuration file")
                expect(page.locator("#import-form button[type=submit]")).to_be_enabled()

            def add_device():
                lab = lab_env()
                remember_secret(lab["LAB_PASSWORD"])
                page.click("#nav >> text=Devices")
                expect(page).to_have_url(base + "/devices")
                expect(page.locator("#device-cards h2")).to_have_text("No devices yet")
                page.click("#add-device")
                expect(page).to_have_url(base + "/devices/new")
                fill_device_form(page, "Server Two", lab["LAB_IP_SERVER_02"], lab)
                expect(page.locator("#report h2")).to_have_text("Ready to add", timeout=30000)
                w.shot("05a-device-test-connection")
                # The device's first check ends before its page listens for events (held back
                # here so that always happens): the page must still turn "Online" by itself.
                with HeldEvents(page):
                    page.click("#add-device-submit")
                    page.wait_for_url(re.compile(r".*/devices/\d+$"), timeout=30000)
                    wait_until("Server Two's first check", 30,
                               lambda: device_state(page, base, "Server Two") == "online")
                expect(page.locator("h1 .badge-online")).to_be_visible(timeout=10000)
                w.shot("05b-device-page")
                page.click("#nav >> text=Dashboard")
                expect(page.locator(".pool-line")).to_contain_text("16.0 GB RAM, 2 cores")
                expect(page.locator(".device-card[data-device='Server Two'] .badge-online")).to_be_visible()
                w.shot("05c-dashboard-with-device")
                page.goto(base + "/apps/vaultwarden")
                expect(page.locator("#placement li.best")).to_contain_text("Server Two")
                w.shot("05d-app-placement")

            def deploy_app():
                # No registry here: the lab's Vaultwarden stand-in (lab/stand-ins) is tagged as
                # Vaultwarden's image on the device, and leftovers of a killed run go first.
                # Fixed scripts; the project label and folder arrive as their arguments.
                project = "label=com.docker.compose.project=homelab-vaultwarden"
                folder = "/opt/homelab/apps/vaultwarden"

                def on_device(script):
                    return subprocess.run([str(ROOT / "lab" / "lab"), "exec", "server-02", "sh", "-c", script,
                                           "walk", project, folder], capture_output=True, text=True, check=True).stdout
                on_device('docker ps -aq --filter "$1" | xargs -r docker rm -f; '
                          'docker volume ls -q --filter "$1" | xargs -r docker volume rm; rm -rf -- "$2"; '
                          'docker tag homelab-lab/standin-vaultwarden:1 vaultwarden/server:1.37.2')
                page.goto(base + "/apps/vaultwarden")
                expect(page.locator("#placement li.best")).to_contain_text("Server Two", timeout=15000)
                page.fill("input[data-setting='HTTP_PORT']", "18222")
                w.shot("08a-deploy-form")
                page.click("#deploy-button")
                page.wait_for_url(re.compile(r".*/deployments/\d+$"), timeout=15000)
                # Progress arrives over the live event stream until the app answers; the
                # heading follows it.
                expect(page.locator("#deploy-words")).to_contain_text("Running", timeout=120000)
                expect(page.locator("h1")).to_have_text("Vaultwarden is running on Server Two")
                # The first visit without a terminal: the admin page's password Homelab chose,
                # shown on request, and the link to where the first account is made.
                page.click("#show-sign-in")
                secret = page.locator("#sign-in-password")
                expect(secret).to_have_text(re.compile(r"^[A-Za-z0-9]{48}$"), timeout=15000)
                ip = lab_env()['LAB_IP_SERVER_02']
                setup = page.locator("#finish-setup").get_attribute("href")
                assert setup == "https://vaultwarden.local/admin", setup
                # The stand-in checks the token against the Argon2 hash Vaultwarden was given
                # (asked at the device's address: this browser has no way to resolve the name).
                admin = f"http://{ip}:18222/admin"
                assert page.request.post(admin, form={"token": secret.inner_text()}).status == 200
                assert page.request.post(admin, form={"token": "wrong"}).status == 401
                page.click("#what-i-did summary")
                expect(page.locator("#deploy-progress .steps")).to_contain_text("Securing it with HTTPS")
                w.shot("08b-deploy-running")
                href = page.locator("#open-app").get_attribute("href")
                assert href == "https://vaultwarden.local/", href
                open_trusted(p, page, base, href, ip)
                # The dashboard knows at once: the device runs the app and Homelab's proxy in
                # front of it, the first-run list is ticked (no poll comes by in this walk).
                deploy_url = page.url
                page.click("#nav >> text=Dashboard")
                expect(page.locator(".device-card[data-device='Server Two']")).to_contain_text(
                    re.compile(r"(^|\D)2 running"), timeout=15000)
                expect(page.locator("#start-app")).to_have_class(re.compile(r"\bdone\b"))
                w.shot("08b2-dashboard-with-app")
                page.goto(deploy_url)
                page.click("text=Manage Vaultwarden")
                expect(page.locator("#app-status > h2 .badge-online")).to_have_text("Running")
                w.shot("08c-app-running")

            def back_up_app():
                # An SSH server on the lab (server-02, a folder nothing else uses) added through
                # the form: a wrong password first, answered next to the form; then the right
                # one, "Test connection", "Back up now" on the app's page with its progress to
                # the end, the run and its snapshot on the app's page, and "Last backup" on the
                # dashboard; then "Restore" on changed data brings the backed-up data back. The
                # walk is in Advanced mode here (set in Settings above).
                lab = lab_env()
                ip = lab["LAB_IP_SERVER_02"]
                folder = "/home/homelab/walk-backups"

                def in_volume(script):
                    # A fixed script in a throwaway container on the app's data volume (at /d).
                    return subprocess.run(
                        [str(ROOT / "lab" / "lab"), "exec", "server-02", "docker", "run", "--rm", "-v",
                         "homelab-vaultwarden_vaultwarden-data:/d", "--entrypoint", "/bin/busybox",
                         "homelab-lab/app-stub:1", "sh", "-c", script],
                        capture_output=True, text=True, check=True).stdout
                # The stand-in keeps nothing itself: give it data worth backing up.
                in_volume("echo before-the-backup > /d/walk.txt && head -c 300000 /dev/urandom > /d/walk.bin")
                subprocess.run([str(ROOT / "lab" / "lab"), "exec", "server-02", "rm", "-rf", "--", folder],
                               check=True, capture_output=True)
                page.click("#nav >> text=Backups")
                expect(page).to_have_url(base + "/backups")
                expect(page.locator("#backups-empty h2")).to_have_text("Backups are not set up")
                expect(page.locator("#backup-app-list [data-app='vaultwarden']")).to_contain_text("Not backed up yet")
                page.check("#kind-sftp")
                page.fill("#dest-name", "Server Two backups")
                page.fill("#dest-host", ip)
                page.fill("#dest-user", lab["LAB_USER"])
                wrong = "wrong-" + secrets.token_hex(8)
                remember_secret(wrong)
                page.fill("#dest-password", wrong)
                page.fill("#dest-path", folder)
                page.click("#add-destination-submit")
                expect(page.locator("#destination-error")).to_contain_text("refused the login", timeout=30000)
                # What was typed stays, but the password.
                expect(page.locator("#dest-name")).to_have_value("Server Two backups")
                expect(page.locator("#dest-host")).to_have_value(ip)
                expect(page.locator("#dest-path")).to_have_value(folder)
                expect(page.locator("#dest-password")).to_have_value("")
                w.shot("10a-backup-destination-refused")
                page.fill("#dest-password", lab["LAB_PASSWORD"])
                page.click("#add-destination-submit")
                row = page.locator(".dest[data-destination='Server Two backups']")
                expect(row).to_contain_text("Not tested yet", timeout=30000)
                expect(page.locator("#destination-error")).to_have_count(0)
                expect(page.locator("#toasts")).to_contain_text("Backups can go to Server Two backups now.")
                expect(row).to_contain_text(f"restic -r sftp:{lab['LAB_USER']}@{ip}:{folder} snapshots")
                expect(row).to_contain_text("SHA256:")
                row.locator("button:has-text('Test connection')").click()
                expect(row.locator(".dest-status")).to_contain_text("Working", timeout=120000)
                w.shot("10b-backup-destination-working")
                # The schedule for all apps: "Every hour" saved, shown in words with the next
                # full hour in the box's zone; then back to the nightly default. The box's own
                # scheduler runs in the walk: a full hour passing while "Every hour" is set
                # would start a backup, so the step keeps clear of one (a clock bound, not a
                # readiness wait).
                def next_full_hour():
                    now = int(time.time())
                    local = time.localtime(now)
                    return now - local.tm_min * 60 - local.tm_sec + 3600
                if next_full_hour() - time.time() < 90:
                    time.sleep(next_full_hour() - time.time() + 5)
                next_hour = time.strftime("%H:00", time.localtime(next_full_hour()))
                schedule = page.locator("#backup-schedule")
                expect(schedule.locator("#schedule-words")).to_have_text("Every day at 02:00")
                page.select_option("#schedule-choice", label="Every hour")
                page.click("#schedule-save")
                expect(schedule.locator("#schedule-words")).to_have_text("Every hour")
                expect(page.locator("#toasts")).to_contain_text("Every hour.")
                expect(schedule.locator("#schedule-next")).to_have_text(
                    re.compile(r"^Next: (today|tonight) at " + next_hour + r" \((UTC|[A-Za-z_]+/[A-Za-z_/+-]+)\)$"))
                w.shot("10b2-backup-schedule-hourly")
                page.select_option("#schedule-choice", label="Every day at 02:00")
                page.click("#schedule-save")
                expect(schedule.locator("#schedule-words")).to_have_text("Every day at 02:00")
                expect(schedule.locator("#schedule-next")).to_contain_text(re.compile(r"Next: (today|tonight|tomorrow) at 02:00"))

                page.click("#backup-app-list [data-app='vaultwarden'] a")
                expect(page).to_have_url(base + "/apps/vaultwarden")
                expect(page.locator("#no-snapshots")).to_be_visible(timeout=60000)
                page.click("#back-up-now")
                page.wait_for_url(re.compile(r".*/deployments/\d+$"), timeout=15000)
                # Live progress to the end (a deadline; the live events move the page).
                progress = page.locator("#deploy-progress")
                expect(progress).to_have_attribute("data-state", re.compile(r"^(running|rolled_back)$"),
                                                   timeout=180000)
                message = page.locator("#deploy-message").inner_text()
                assert progress.get_attribute("data-state") == "running", message
                expect(page.locator("h1")).to_have_text("Vaultwarden is backed up")
                expect(page.locator("#deploy-words")).to_contain_text("Backed up")
                assert "to Server Two backups" in message, message
                w.shot("10c-backup-done")
                page.click("#back-to-app")
                expect(page).to_have_url(base + "/apps/vaultwarden")
                runs = page.locator("#backup-runs tbody tr")
                expect(runs).to_have_count(1)
                expect(runs.first).to_contain_text("Done")
                expect(runs.first).to_contain_text("Server Two backups")
                cells = runs.first.locator("td")
                assert int(cells.nth(3).inner_text()) >= 2, cells.nth(3).inner_text()
                assert cells.nth(4).inner_text().endswith(" KB"), cells.nth(4).inner_text()
                expect(page.locator("#app-last-backup")).to_contain_text(
                    re.compile(r"Last backup (just now|\d+ min ago)"))
                snapshots = page.locator("#snapshot-rows tbody tr")
                expect(snapshots).to_have_count(1, timeout=60000)
                expect(snapshots.first).to_contain_text("Server Two backups")
                expect(snapshots.first.locator("button:has-text('Restore')")).to_be_visible()
                w.shot("10d-app-backups")
                # The data changes, then goes back to how it was, after the owner confirms.
                in_volume("echo after-the-backup > /d/walk.txt")
                asked = []

                def confirm(dialog):
                    asked.append(dialog.message)
                    dialog.accept()
                page.once("dialog", confirm)
                snapshots.first.locator("button:has-text('Restore')").click()
                page.wait_for_url(re.compile(r".*/deployments/\d+$"), timeout=15000)
                assert re.match(r"^Vaultwarden goes back to how it was on \d+ \w+ \d{4} at \d\d:\d\d\. "
                                r"Changes since then are lost\. If it does not start, Homelab switches back "
                                r"to today's data\.$", asked[0]), asked
                expect(progress).to_have_attribute("data-state", re.compile(r"^(running|rolled_back)$"),
                                                   timeout=180000)
                message = page.locator("#deploy-message").inner_text()
                assert progress.get_attribute("data-state") == "running", message
                expect(page.locator("h1")).to_have_text("Vaultwarden is restored")
                assert in_volume("cat /d/walk.txt").strip() == "before-the-backup"
                w.shot("10e-restore-done")
                page.click("#nav >> text=Dashboard")
                expect(page.locator("#backups-last")).to_contain_text(
                    re.compile(r"Last backup (just now|\d+ min ago)"))
                expect(page.locator("#backups-card .backup-trouble")).to_have_count(0)
                expect(page.locator("#start-backups")).to_have_class(re.compile(r"\bdone\b"))
                w.shot("10f-dashboard-backups")
                # "Check all backup data" (Advanced): the box reads everything stored there in the
                # background; when it ends, its toast says so and the row follows by itself.
                page.click("#nav >> text=Backups")
                expect(page.locator("#backup-app-list [data-app='vaultwarden']")).to_contain_text("Last backup")
                expect(row.locator(".upkeep")).to_have_text("Backup data: Not checked yet (Homelab checks it once a week).")
                asked.clear()
                page.once("dialog", confirm)
                row.locator("button:has-text('Check all backup data')").click()
                expect(page.locator("#toasts")).to_contain_text("Checking the backups at Server Two backups…")
                assert "downloads everything stored there" in asked[0], asked
                expect(page.locator("#toasts")).to_contain_text("Server Two backups: checked, all sound.", timeout=120000)
                expect(row.locator(".upkeep")).to_have_text(re.compile(r"^Backup data: Last checked (just now|1 min ago)\.$"))
                expect(row.locator(".damage")).to_have_count(0)
                w.shot("10g-backup-data-checked")
                # The destination stays: the next step moves the app through it (and removes it).

            def usb_disk():
                # A USB disk plugged into the box (a loop-mounted ext4 image on the machine the
                # daemon runs on): the form offers it in words; added, "Test connection" makes its
                # backup store from a device, through the box; then it is removed again (its
                # backups stay on the disk), so the later steps see one destination as before.
                image = Path(tempfile.mkdtemp(prefix="walk-usb-")) / "disk.img"
                mount = image.parent / "mnt"
                mount.mkdir()
                with open(image, "wb") as f:
                    f.truncate(256 << 20)
                subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
                subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
                try:
                    page.click("#nav >> text=Backups")
                    page.check("#kind-disk")
                    choice = page.locator(f"#box-disks input[value='{mount}']")
                    expect(choice).to_be_visible()
                    expect(page.locator("#box-disks")).to_contain_text(re.compile(r"Disk loop\d+ \(\d+ MB\), \d+ MB free"))
                    choice.check()
                    page.fill("#dest-name", "USB disk")
                    page.click("#add-destination-submit")
                    row = page.locator(".dest[data-destination='USB disk']")
                    expect(row).to_contain_text("Not tested yet", timeout=30000)
                    expect(page.locator("#toasts")).to_contain_text("Backups can go to USB disk now.")
                    expect(row).to_contain_text(f"restic -r {mount}/homelab-backups snapshots")
                    row.locator("button:has-text('Test connection')").click()
                    expect(row.locator(".dest-status")).to_contain_text("Working", timeout=120000)
                    assert (mount / "homelab-backups" / "config").is_file()
                    w.shot("10g2-usb-disk")
                    page.once("dialog", lambda d: d.accept())
                    row.locator("button:has-text('Remove')").click()
                    expect(row).to_have_count(0)
                finally:
                    subprocess.run(["umount", str(mount)], check=False)
                    shutil.rmtree(image.parent, ignore_errors=True)

            def move_app():
                # A second device adopted through the form, then "Move to another device" on the
                # app's page: the app goes to Server One through a backup at Server Two backups
                # (the one the previous step set up), with its data, secrets and name, and its
                # old copy goes; then back to Server Two the same way, where the later steps
                # expect it. Each move is checked from outside on both devices (Docker there, the
                # data in the volume), not only by what the page says.
                lab = lab_env()
                ips = {"Server One": lab["LAB_IP_SERVER_01"], "Server Two": lab["LAB_IP_SERVER_02"]}
                lab_names = {"Server One": "server-01", "Server Two": "server-02"}
                project = "label=com.docker.compose.project=homelab-vaultwarden"
                folder = "/opt/homelab/apps/vaultwarden"

                def on_device(device, script):
                    # Fixed scripts; the project label, the volumes' name prefix and the folder
                    # arrive as their arguments.
                    return subprocess.run([str(ROOT / "lab" / "lab"), "exec", lab_names[device], "sh", "-c",
                                           script, "walk", project, "name=homelab-vaultwarden_", folder],
                                          capture_output=True, text=True, check=True).stdout

                def in_volume(device, script):
                    # As back_up_app reads the volume (a throwaway container on it, at /d). Only
                    # where the volume exists: `docker run -v` would make an empty one.
                    return subprocess.run(
                        [str(ROOT / "lab" / "lab"), "exec", lab_names[device], "docker", "run", "--rm", "-v",
                         "homelab-vaultwarden_vaultwarden-data:/d", "--entrypoint", "/bin/busybox",
                         "homelab-lab/app-stub:1", "sh", "-c", script],
                        capture_output=True, text=True, check=True).stdout

                def data(device):
                    # What the backup step left in the volume: walk.txt as restored there, and
                    # walk.bin's 300 KB of random bytes (by their hash).
                    return in_volume(device, "cat /d/walk.txt && /bin/busybox sha256sum /d/walk.bin")

                def nothing_left(device):
                    left = on_device(device, 'docker ps -aq --filter "$1"; docker volume ls -q --filter "$2"; '
                                             'ls -d "$3" 2>/dev/null || true').strip()
                    assert left == "", f"left on {device} after the move: {left}"

                def move_to(device, shots):
                    page.goto(base + "/apps/vaultwarden")
                    page.click("#move-app")
                    expect(page).to_have_url(base + "/apps/vaultwarden/move")
                    expect(page.locator("h1")).to_have_text("Move Vaultwarden to another device")
                    # The only other device: ranked, recommended and preselected; chosen anyway,
                    # as an owner would.
                    choice = page.locator(f"#move-ranking input[type=radio][data-device='{device}']")
                    expect(page.locator("#move-ranking li")).to_have_count(1)
                    expect(page.locator("#move-ranking li.best")).to_contain_text(device)
                    expect(choice).to_be_checked()
                    choice.check()
                    # One destination: no choice, just where the data travels through. Advanced
                    # mode offers an existing backup; left empty, the move backs it up now.
                    expect(page.locator("#move-form")).to_contain_text(
                        "Its data travels through Server Two backups, where its backups go.")
                    expect(page.locator("#move-snapshot")).to_have_value("")
                    w.shot(f"{shots[0]}-move-to-{device.replace(' ', '-').lower()}")
                    page.click("#move-button")
                    page.wait_for_url(re.compile(r".*/deployments/\d+$"), timeout=15000)
                    # The page follows the move to its end (a deadline; it refreshes itself);
                    # a move that fails stops the wait at once, its message saying why.
                    heading = page.locator("h1")
                    expect(heading).to_have_text(
                        re.compile(rf"^Vaultwarden (moved to {device}|was not moved: it stays where it was)$"
                                   r"|failed$"), timeout=180000)
                    message = page.locator("#deploy-message").inner_text()
                    assert heading.inner_text() == f"Vaultwarden moved to {device}", message
                    # Nothing after "with its data from …": the old copy was removed.
                    assert message == f"Moved Vaultwarden to {device} with its data from Server Two backups.", message
                    expect(page.locator("#deploy-words")).to_contain_text("Moved")
                    w.shot(f"{shots[1]}-moved-to-{device.replace(' ', '-').lower()}")
                    # Its page says where it runs now, and that its name points there.
                    page.goto(base + "/apps/vaultwarden")
                    expect(page.locator("#app-status > h2")).to_contain_text(f"Vaultwarden on {device}")
                    expect(page.locator("#app-status > h2 .badge-online")).to_have_text("Running")
                    expect(page.locator("#app-name")).to_contain_text(f"points at {ips[device]}.")
                    # Same settings and secrets there: the new copy answers on the same port and
                    # takes the admin password Homelab chose at the install (the stand-in
                    # checks it against the Argon2 hash it was given).
                    page.click("#show-sign-in")
                    secret = page.locator("#sign-in-password")
                    expect(secret).to_have_text(re.compile(r"^[A-Za-z0-9]{48}$"), timeout=15000)
                    admin = f"http://{ips[device]}:18222/admin"
                    assert page.request.post(admin, form={"token": secret.inner_text()}).status == 200
                    assert page.request.post(admin, form={"token": "wrong"}).status == 401
                    w.shot(f"{shots[2]}-app-on-{device.replace(' ', '-').lower()}")

                def runs_on(device, before):
                    running = on_device(device, 'docker ps -q --filter "$1" --filter status=running').split()
                    assert running, f"no container of Vaultwarden runs on {device}"
                    there = data(device)
                    assert there == before, f"data on {device}: {there!r}, before the move: {before!r}"

                # Server One as deploy_app prepares Server Two: leftovers of a killed run go, and
                # the lab's stand-in is tagged as Vaultwarden's image (no registry here).
                on_device("Server One", 'docker ps -aq --filter "$1" | xargs -r docker rm -f; '
                                        'docker volume ls -q --filter "$1" | xargs -r docker volume rm; '
                                        'rm -rf -- "$3"; '
                                        'docker tag homelab-lab/standin-vaultwarden:1 vaultwarden/server:1.37.2')
                page.goto(base + "/devices/new")
                fill_device_form(page, "Server One", ips["Server One"], lab)
                expect(page.locator("#report h2")).to_have_text("Ready to add", timeout=30000)
                page.click("#add-device-submit")
                page.wait_for_url(re.compile(r".*/devices/\d+$"), timeout=30000)
                server_one = page.url
                wait_until("Server One's first check", 30,
                           lambda: device_state(page, base, "Server One") == "online")
                expect(page.locator("h1 .badge-online")).to_be_visible(timeout=10000)

                before = data("Server Two")
                assert before.startswith("before-the-backup\n"), before
                move_to("Server One", ("11a", "11b", "11c"))
                runs_on("Server One", before)
                nothing_left("Server Two")
                move_to("Server Two", ("11d", "11e", "11f"))
                nothing_left("Server One")
                runs_on("Server Two", before)

                # The destination removed (its backups stay on the server; Homelab stops using
                # it): the move page then says a move needs one, and still ranks the devices.
                page.click("#nav >> text=Backups")
                row = page.locator(".dest[data-destination='Server Two backups']")
                page.once("dialog", lambda d: d.accept())
                row.locator("button:has-text('Remove')").click()
                expect(page.locator("#backups-empty h2")).to_have_text("Backups are not set up")
                expect(page.locator("#toasts")).to_contain_text("Homelab no longer backs up to Server Two backups")
                subprocess.run([str(ROOT / "lab" / "lab"), "exec", "server-02", "rm", "-rf", "--",
                                "/home/homelab/walk-backups"], check=True, capture_output=True)
                page.goto(base + "/apps/vaultwarden/move")
                expect(page.locator("#move-no-destination h2")).to_have_text("Backups are not set up")
                expect(page.locator("#move-ranking li[data-device='Server One']")).to_be_visible()
                expect(page.locator("#move-button")).to_have_count(0)
                w.shot("11g-move-needs-backups")
                # Server One goes again, with Homelab's key: the later steps rank Server Two
                # alone, and the lab's other tests use server-01.
                page.goto(server_one)
                page.once("dialog", lambda d: d.accept())
                page.click("#remove-device")
                expect(page).to_have_url(base + "/devices")
                expect(page.locator(".device-card[data-device='Server Two']")).to_be_visible()
                expect(page.locator(".device-card[data-device='Server One']")).to_have_count(0)

            def remove_app():
                project = "label=com.docker.compose.project=homelab-vaultwarden"
                folder = "/opt/homelab/apps/vaultwarden"

                def on_device(script):
                    return subprocess.run([str(ROOT / "lab" / "lab"), "exec", "server-02", "sh", "-c", script,
                                           "walk", project, folder], capture_output=True, text=True, check=True).stdout
                page.goto(base + "/apps/vaultwarden")
                page.once("dialog", lambda d: d.accept())
                page.check("#delete-data")
                page.click("#app-remove-button")
                expect(page.locator("#deploy-form")).to_be_visible(timeout=30000)
                left = on_device('docker ps -aq --filter "$1"; docker volume ls -q --filter "$1"; '
                                 'ls "$2" 2>/dev/null || true').strip()
                assert left == "", f"left on the device after removal: {left}"

            def cable_pulled_while_starting():
                # The owner pulls the device's cable while an app is starting: the page says
                # why it failed in one plain sentence, with no reload, and finishes the cleanup
                # by itself once the cable is back.
                lab = lab_env()
                project = "label=com.docker.compose.project=homelab-lab-slow"

                def on_device(script):
                    return subprocess.run([str(ROOT / "lab" / "lab"), "exec", "server-02", "sh", "-c", script,
                                           "walk", project], capture_output=True, text=True, check=True).stdout
                on_device('docker ps -aq --filter "$1" | xargs -r docker rm -f; '
                          'docker tag homelab-lab/app-stub:1 example/lab-web:1.0')
                page.goto(base + "/apps/lab-slow")
                expect(page.locator("#placement li.best")).to_contain_text("Server Two", timeout=15000)
                page.click("#deploy-button")
                page.wait_for_url(re.compile(r".*/deployments/\d+$"), timeout=15000)
                expect(page.locator("#deploy-words")).to_contain_text("Waiting for the app to answer", timeout=60000)
                expect(page.locator("h1")).to_have_text("Installing Slow Starter on Server Two")
                eta = page.locator("#deploy-eta").inner_text()
                assert "0 min" not in eta, eta
                power = [str(ROOT / "lab" / "lab"), "power", "server-02"]
                subprocess.run(power + ["off"], check=True, capture_output=True)
                try:
                    message = page.locator("#deploy-message")
                    expect(message).to_contain_text("Server Two stopped answering: it may be off, unplugged or restarting.",
                                                    timeout=90000)
                    expect(page.locator("h1")).to_have_text("Installing Slow Starter on Server Two failed")
                    text = message.inner_text()
                    for leak in ["os error", ":22", "SSH", "Docker", lab["LAB_IP_SERVER_02"], "answering Homelab"]:
                        assert leak not in text, f"“{leak}” in: {text}"
                    w.shot("08d-cable-pulled")
                finally:
                    subprocess.run(power + ["on"], check=True, capture_output=True)
                expect(page.locator("#deploy-words")).to_contain_text("Rolled back", timeout=120000)
                expect(page.locator("h1")).to_have_text("Slow Starter was not installed on Server Two")
                expect(page.locator("#deploy-message")).to_contain_text("Everything it changed on Server Two was undone.")
                w.shot("08e-cable-back")
                left = on_device('docker ps -aq --filter "$1"').strip()
                assert left == "", f"left on the device after the rollback: {left}"

            def install_docker():
                # bare-01 is a fresh Debian without Docker; the install is real (apt from the
                # lab's mirror), and `lab reset` puts the device back afterwards.
                lab = lab_env()
                try:
                    page.goto(base + "/devices/new")
                    fill_device_form(page, "Bare", lab["LAB_IP_BARE_01"], lab)
                    expect(page.locator("#report h2")).to_have_text("Not ready yet", timeout=30000)
                    expect(page.locator("#install-docker")).to_be_visible()
                    w.shot("09a-docker-missing")
                    page.click("#install-docker")
                    expect(page.locator("#install-result")).to_contain_text("Docker is installed", timeout=300000)
                    expect(page.locator("#report h2")).to_have_text("Ready to add")
                    w.shot("09b-docker-installed")
                finally:
                    subprocess.run([str(ROOT / "lab" / "lab"), "reset", "bare-01"], check=True,
                                   capture_output=True)

            def sign_out_and_in():
                page.click("#sign-out")
                expect(page).to_have_url(base + "/login?signed_out=1")
                expect(page.locator(".alert-info")).to_contain_text("You are signed out")
                page.fill("#username", "admin")
                page.fill("#password", "not-the-password")
                # The refused sign-in answers 401, which Chromium reports on the console.
                w.expected.append("status of 401")
                page.click("button[type=submit]")
                expect(page.locator(".alert-error")).to_contain_text("Wrong username or password")
                w.shot("05-login-error")
                page.fill("#password", password)
                page.click("button[type=submit]")
                expect(page).to_have_url(base + "/")
                page.goto(base + "/settings")
                expect(page).to_have_url(base + "/settings")

            def box_backup_and_restore():
                # The box's own backup: the recovery passphrase set on the Backups page starts
                # one at once (its line arrives live), "Back up the box now" says it worked, the
                # recovery sheet names the place. Then a second, empty box (the same binary on
                # a fresh data folder) is restored from it through "Restore from a backup": a
                # wrong passphrase is refused in words; the right one brings the homelab back
                # after the daemon starts itself again, and the old account signs in.
                lab = lab_env()
                ip = lab["LAB_IP_SERVER_02"]
                folder = "/home/homelab/walk-backups"
                passphrase = "walk-recovery-" + secrets.token_urlsafe(12)
                remember_secret(passphrase)
                page.click("#nav >> text=Backups")
                card = page.locator("#box-backup")
                # Type only once htmx has wired up the swapped-in form.
                page.wait_for_function(
                    "() => document.querySelector('#box-passphrase-form')['htmx-internal-data'] !== undefined")
                page.fill("#box-passphrase", passphrase)
                page.fill("#box-confirm", passphrase)
                page.fill("#box-password", password)
                page.click("#box-passphrase-save")
                expect(page.locator("#toasts")).to_contain_text("Recovery passphrase set")
                expect(card.locator("#box-last")).to_contain_text("Backed up", timeout=60000)
                expect(card.locator("#box-lines")).to_contain_text("Server Two backups")
                page.click("#box-back-up")
                expect(card.locator("#box-done")).to_contain_text("backed up", timeout=60000)
                w.shot("10e-box-backup")
                sheet = page.request.get(base + "/backups/recovery-sheet").text()
                assert folder in sheet and "Restore from a backup" in sheet, sheet[:500]
                assert passphrase not in sheet

                port2 = free_port()
                base2 = f"http://127.0.0.1:{port2}"
                data2 = ARTIFACTS / "data" / f"browser-restored-{secrets.token_hex(4)}"
                data2.mkdir(parents=True, exist_ok=True)
                log2 = open(ARTIFACTS / "logs" / "browser-restored-daemon.log", "w")
                proc2 = subprocess.Popen(
                    [str(BIN), "run", "--listen", f"127.0.0.1:{port2}", "--data", str(data2),
                     "--poll-interval", "3600", "--backup-schedule", "off"],
                    stdout=log2, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "info"})
                fresh = browser.new_context(viewport={"width": 1280, "height": 800})
                try:
                    wait_healthy(base2, proc2)
                    p2 = fresh.new_page()
                    p2.goto(base2 + "/")
                    p2.click("#restore-link a")
                    expect(p2.locator("h1")).to_have_text("Restore from a backup")
                    # A restore needs the new box's setup code (from its console; here its CLI).
                    code = subprocess.run([str(BIN), "setup-code", "--data", str(data2)],
                                          capture_output=True, text=True, check=True).stdout.strip()
                    p2.fill("#setup_code", code)
                    p2.check("#kind-sftp")
                    p2.fill("#dest-host", ip)
                    p2.fill("#dest-user", lab["LAB_USER"])
                    p2.fill("#dest-password", lab["LAB_PASSWORD"])
                    p2.fill("#dest-path", folder)
                    wrong = "not-the-passphrase-" + secrets.token_hex(6)
                    remember_secret(wrong)
                    p2.fill("#restore-passphrase", wrong)
                    p2.click("#restore-submit")
                    expect(p2.locator("#restore-error")).to_contain_text("does not open", timeout=60000)
                    expect(p2.locator("#dest-path")).to_have_value(folder)
                    w.shot("10f-restore-refused", p2)
                    p2.fill("#setup_code", code)
                    p2.fill("#dest-password", lab["LAB_PASSWORD"])
                    p2.fill("#restore-passphrase", passphrase)
                    p2.click("#restore-submit")
                    expect(p2.locator("#restore-done")).to_be_visible(timeout=60000)
                    w.shot("10g-restore-done", p2)
                    # The daemon stops and starts again by itself with the restored state.
                    def signs_in_now():
                        # Claimed (the restored owner): /login no longer sends to /setup.
                        try:
                            with urllib.request.urlopen(base2 + "/login", timeout=2) as r:
                                return r.status == 200 and r.geturl().endswith("/login")
                        except OSError:
                            return False
                    wait_until("the restored box answers", 30, lambda: proc2.poll() is None and signs_in_now())
                    p2.click("text=Sign in")
                    p2.fill("#username", "admin")
                    p2.fill("#password", password)
                    p2.click("button[type=submit]")
                    expect(p2.locator("h1")).to_have_text("Your homelab")
                    expect(p2.locator("#restored-note")).to_contain_text("Your homelab is back")
                    expect(p2.locator(".device-card[data-device='Server Two']")).to_be_visible()
                    w.shot("10h-restored-dashboard", p2)
                    p2.click("#restored-note button")
                    expect(p2.locator("#restored-note")).to_have_count(0)
                finally:
                    fresh.close()
                    proc2.terminate()
                    try:
                        proc2.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc2.kill()
                    log2.close()

            def phone_and_dark():
                phone = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark",
                                            storage_state=ctx.storage_state())
                pp = phone.new_page()
                pp.on("console", lambda m: m.type == "error" and w.problems.append(f"console (phone): {m.text}"))
                pp.goto(base + "/")
                expect(pp.locator("h1")).to_have_text("Your homelab")
                nav_box = pp.locator("#nav").bounding_box()
                assert nav_box and nav_box["y"] > 700, f"nav should be a bottom bar on phones: {nav_box}"
                w.shot("06-phone-dark-dashboard", pp)
                pp.goto(base + "/settings")
                w.shot("07-phone-dark-settings", pp)
                phone.close()

            def final_sign_out():
                page.click("#sign-out")
                expect(page).to_have_url(base + "/login?signed_out=1")
                page.goto(base + "/settings")
                expect(page).to_have_url(base + "/login?next=/settings")

            for name, fn in [("claim", claim), ("sections via htmx", sections),
                             ("settings, advanced mode, live events", settings_advanced_and_live_events),
                             ("updates page", updates_page),
                             ("update channel with a window", update_channel),
                             ("add a device and see it on the dashboard", add_device),
                             ("history, export and import", history_export_import),
                             ("deploy an app, open it", deploy_app),
                             ("back the app up to an SSH server", back_up_app),
                             ("a USB disk on the box", usb_disk),
                             ("the box backs itself up; a new box restores from it", box_backup_and_restore),
                             ("move the app to another device and back", move_app),
                             ("remove the app with its data", remove_app),
                             ("cable pulled while an app starts", cable_pulled_while_starting),
                             ("install Docker on a device without it", install_docker),
                             ("sign out and in", sign_out_and_in), ("phone width, dark mode", phone_and_dark),
                             ("sign out", final_sign_out)]:
                try:
                    w.step(name, fn)
                except Exception as e:  # noqa: BLE001 - report every failing step, then fail
                    failed += 1
                    print(f"  FAIL {name}: {e}", flush=True)
                    w.shot(f"fail-{name.replace(' ', '-').replace(',', '')}")
                    break
            if w.expected:
                w.problems.append(f"expected console errors never came: {w.expected}")
            if w.problems:
                failed += 1
                print("browser console errors:\n  " + "\n  ".join(w.problems), flush=True)
            browser.close()
            print(f"browser: {w.passed} passed, {failed} failed")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            failed += 1
            print("homelabd did not stop on SIGTERM")
        log.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
