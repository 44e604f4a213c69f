#!/usr/bin/env python3
"""A faithful stand-in for OPNsense's REST API (versions 25.1 and 26.1), for tests.

OPNsense is a FreeBSD appliance and cannot run here, so this serves the API routes Homelab
reads and writes, with the JSON shapes of opnsense/core at the tags 25.1 and 26.1 (sources
cited in /work/research-16/opnsense.md and beside each route below):

  GET  /api/diagnostics/system/systemInformation   Diagnostics/Api/SystemController.php
  GET  /api/diagnostics/system/systemTime          (26.1 adds "boottime")
  GET  /api/diagnostics/system/systemResources     (memory figures: some strings, some numbers)
  GET  /api/diagnostics/cpu_usage/getCPUType       Diagnostics/Api/CpuUsageController.php
  GET  /api/core/firmware/info                     Core/Api/FirmwareController.php
  GET  /api/interfaces/overview/interfacesInfo     Interfaces/Api/OverviewController.php (recordset)
  GET  /api/interfaces/overview/export             (a bare list, with statistics)
  GET  /api/diagnostics/traffic/interface          Diagnostics/Api/TrafficController.php +
                                                   scripts/interfaces/traffic_stats.php (counters as strings)
  GET  /api/routes/gateway/status                  Routes/Api/GatewayController.php + scripts/routes/gateway_status.php
  GET  /api/dhcpv4/leases/searchLease              DHCPv4/Api/LeasesController.php (25.1 only: ISC moved to a plugin in 26.1)
  GET  /api/kea/leases4/search                     Kea/Api/Leases4Controller.php (26.1 adds "is_reserved")
  GET  /api/diagnostics/firewall/log?limit=N       Diagnostics/Api/FirewallController.php + scripts/filter/read_log.py
  GET  /api/unbound/settings/searchHostOverride    Unbound/Api/SettingsController.php + Base/UIModelGrid.php
       (25.1: option fields as their descriptions; 26.1: raw values plus "%field" descriptions, ttl/txtdata)
  GET  /api/unbound/settings/getHostOverride/UUID
  POST /api/unbound/settings/addHostOverride       {"host": {...}} -> {"result":"saved","uuid":...}
  POST /api/unbound/settings/setHostOverride/UUID  -> {"result":"saved"}
  POST /api/unbound/settings/delHostOverride/UUID  -> {"result":"deleted"} / {"result":"not found"}
  POST /api/unbound/service/reconfigure            -> {"status":"ok"} (GET: {"status":"failed"})

Authentication is HTTP Basic with the API key and secret (Base/ApiControllerBase.php): anything
else is 401 {"status":401,"message":"Authentication Failed"}; an unknown route is 404
{"errorMessage":"Endpoint not found"} (www/api.php). Action names are matched as PHP does:
case-insensitively, and the snake_case spelling works too.

Usage: opnsense.py --port N --version 25.1|26.1 [--state FILE] [--cert-dir DIR]
                   [--key KEY --secret SECRET]
It prints "ready PORT" on stdout once it listens (port 0 picks a free one). The certificate
is made with the openssl CLI in --cert-dir when none is there yet, so a restart with the same
directory keeps it and a fresh directory gives a new one. The state file (JSON) seeds leases,
the firewall log, host overrides, the WAN link and traffic rates; host overrides and the count
of reconfigures are written back to it.
"""

import argparse
import base64
import hmac
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1 << 20

DEFAULT_STATE = {
    "hostname": "OPNsense",
    "domain": "localdomain",
    "wan_up": True,
    # Bytes per second the counters grow by: 6 MB/s in is 48 Mbit/s.
    "traffic": {
        "wan": {"in_bps": 6_000_000, "out_bps": 1_000_000},
        "lan": {"in_bps": 1_000_000, "out_bps": 6_000_000},
    },
    "leases": [
        {"address": "192.168.1.100", "hwaddr": "00:11:22:33:44:55", "hostname": "laptop", "online": True},
        {"address": "192.168.1.101", "hwaddr": "00:11:22:33:44:66", "hostname": "phone", "online": True},
        {"address": "192.168.1.102", "hwaddr": "00:11:22:33:44:77", "hostname": "printer", "online": False},
    ],
    "blocks": [
        {"src": "203.0.113.9", "dst": "198.51.100.2", "srcport": "51515", "dstport": "22", "proto": "tcp"},
        {"src": "203.0.113.10", "dst": "198.51.100.2", "srcport": "40000", "dstport": "3389", "proto": "tcp"},
    ],
    "host_overrides": [
        {"uuid": "5f3c1a2e-1111-4c2b-9a61-0123456789ab", "enabled": "1", "hostname": "nas",
         "domain": "home.arpa", "rr": "A", "server": "192.168.1.20", "description": "my own entry"},
    ],
    "reconfigures": 0,
}

RR_DESCR = {"A": "A (IPv4 address)", "AAAA": "AAAA (IPv6 address)", "MX": "MX (mail server)", "TXT": "TXT (text)"}


class Fake:
    def __init__(self, args):
        self.version = args.version
        self.key = args.key
        self.secret = args.secret
        self.state_file = args.state
        self.lock = threading.Lock()
        self.started = time.time()
        self.state = json.loads(json.dumps(DEFAULT_STATE))
        if self.state_file and os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as f:
                self.state.update(json.load(f))

    def save(self):
        if self.state_file:
            tmp = self.state_file + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.state, f, indent=1)
            os.replace(tmp, self.state_file)

    # --- system -----------------------------------------------------------------------
    def product_version(self):
        return {"25.1": "25.1.12", "26.1": "26.1.2_1"}[self.version]

    def system_information(self, q):
        return {
            "name": f"{self.state['hostname']}.{self.state['domain']}",
            "versions": [
                f"OPNsense {self.product_version()}-amd64",
                "FreeBSD 14.2-RELEASE-p1" if self.version == "25.1" else "FreeBSD 14.3-RELEASE-p5",
                "OpenSSL 3.0.15 3 Sep 2024",
            ],
            "updates": "Click to check for updates.",
        }

    def system_time(self, q):
        up = int(time.time() - self.started) + 3 * 86400 + 3723
        days, rest = divmod(up, 86400)
        uptime = "%d %s, %02d:%02d:%02d" % (days, "days" if days > 1 else "day", rest // 3600, rest % 3600 // 60, rest % 60)
        fmt = "%a %b %-d %-H:%M:%S UTC %Y"
        out = {
            "uptime": uptime,
            "datetime": time.strftime(fmt, time.gmtime()),
            "config": time.strftime(fmt, time.gmtime(self.started)),
            "loadavg": "0.21, 0.18, 0.15",
        }
        if self.version == "26.1":
            out = {"uptime": out["uptime"], "datetime": out["datetime"],
                   "boottime": time.strftime(fmt, time.gmtime(time.time() - up)),
                   "config": out["config"], "loadavg": out["loadavg"]}
        return out

    def system_resources(self, q):
        physmem = 8 * 1024 ** 3
        used = round(physmem * 0.375, 0)
        # hw.physmem comes from sysctl as a string; "used" is PHP's round(): a float.
        return {"memory": {
            "total": str(physmem), "total_frmt": "%d" % (physmem // 1024 // 1024),
            "used": float(used), "used_frmt": "%d" % (used / 1024 / 1024),
            "arc": "536870912", "arc_frmt": "512", "arc_txt": "ARC size 512 MB",
        }}

    def cpu_type(self, q):
        return ["Intel(R) Celeron(R) N5105 @ 2.00GHz (4 cores, 4 threads)"]

    def firmware_info(self, q):
        v = self.product_version()
        series = self.version
        check = {
            "api_version": "1", "connection": "ok", "downgrade_packages": [], "download_size": "",
            "last_check": "", "needs_reboot": "0", "new_packages": [], "os_version": "FreeBSD",
            "product_id": "opnsense", "product_target": "opnsense", "product_version": v,
            "product_abi": series, "reinstall_packages": [], "remove_packages": [], "repository": "ok",
            "upgrade_major_message": "", "upgrade_major_version": "", "upgrade_needs_reboot": "0",
            "upgrade_packages": [], "upgrade_sets": [],
        }
        return {
            "product_id": "opnsense",
            "product_version": v,
            "package": [{
                "name": "opnsense", "version": v, "comment": "OPNsense release", "flatsize": "36.6MiB",
                "locked": "N/A", "automatic": "N/A", "license": "BSD2CLAUSE", "repository": "OPNsense",
                "origin": "opnsense/opnsense", "provided": "1", "installed": "1", "path": "OPNsense/opnsense",
                "configured": "1",
            }],
            "plugin": [],
            "changelog": [{"series": series, "version": v, "date": "2026-01-28"}],
            "product": {
                "product_abi": series, "product_arch": "amd64", "product_check": check,
                "product_conflicts": "", "product_copyright_owner": "Deciso B.V.",
                "product_copyright_url": "https://www.deciso.com/", "product_copyright_years": "2014-2026",
                "product_email": "project@opnsense.org", "product_hash": "0123abcd",
                "product_id": "opnsense", "product_latest": v, "product_license": [], "product_log": 0,
                "product_mirror": "https://pkg.opnsense.org/FreeBSD:14:amd64/" + series,
                "product_name": "OPNsense", "product_nickname": "Ultimate", "product_repos": "OPNsense",
                "product_series": series, "product_tier": "1", "product_time": "Wed Jan 28 10:00:00 UTC 2026",
                "product_version": v, "product_website": "https://opnsense.org/",
            },
        }

    def core_system_status(self, q):
        return {"metadata": {"system": {"status": "OK", "message": "No pending messages", "title": "System"},
                             "translations": {"dialogTitle": "System Status", "dialogCloseButton": "Close"},
                             "subsystems": []}}

    # --- interfaces ---------------------------------------------------------------------
    def interfaces(self, detailed):
        wan_up = self.state.get("wan_up", True)
        counters = self.counters()
        rows = []
        for ident, dev, descr, addr, mac, up, link in [
            ("wan", "igc0", "WAN", "198.51.100.2/24", "00:f0:cb:00:00:01", wan_up, "dhcp"),
            ("lan", "igc1", "LAN", "192.168.1.1/24", "00:f0:cb:00:00:02", True, "static"),
        ]:
            row = {
                "flags": ["up", "broadcast", "running", "simplex", "multicast"] if up else ["broadcast", "simplex", "multicast"],
                "capabilities": ["rxcsum", "txcsum", "vlan_mtu"],
                "options": ["rxcsum", "txcsum"],
                "macaddr": mac, "macaddr_hw": mac,
                "supported_media": ["autoselect", "1000baseT"],
                "is_physical": True, "device": dev, "mtu": 1500,
                "media": "Ethernet autoselect (1000baseT <full-duplex>)" if up else "Ethernet autoselect",
                "media_raw": "Ethernet autoselect (1000baseT <full-duplex>)",
                "status": "up" if up else "no carrier",
                "nd6": {"flags": ["performnud"]},
                "routes": [addr.rsplit(".", 1)[0] + ".0/24"],
                "config": {"if": dev, "descr": descr, "enable": "1", "ipaddr": link if link == "dhcp" else addr.split("/")[0],
                           "subnet": "24", "identifier": ident},
                "groups": [],
                "ifctl.nameserver": ["198.51.100.1"] if ident == "wan" else [],
                "ifctl.router": ["198.51.100.1"] if ident == "wan" else [],
                "ifctl.searchdomain": [],
                "identifier": ident, "description": descr, "enabled": True,
                "link_type": link, "addr4": addr, "addr6": "",
                "ipv4": [{"ipaddr": addr}] if up else [],
                "vlan_tag": None,
                "gateways": ["198.51.100.1"] if ident == "wan" else [],
            }
            if detailed:
                c = counters[ident]
                row["statistics"] = {
                    "device": dev, "driver": "igc", "mtu": 1500,
                    "bytes received": c["inbytes"], "bytes transmitted": c["outbytes"],
                    "packets received": c["inpkts"], "packets transmitted": c["outpkts"],
                    "input errors": "0", "output errors": "0", "collisions": "0",
                }
            rows.append(row)
        return rows

    def interfaces_info(self, q):
        return recordset(self.interfaces(q.get("details") == "1"), q)

    def interfaces_export(self, q):
        return self.interfaces(True)

    def counters(self):
        elapsed = time.time() - self.started
        out = {}
        for ident, base in (("wan", 9_000_000_000), ("lan", 4_000_000_000)):
            rate = self.state["traffic"].get(ident, {})
            up = ident != "wan" or self.state.get("wan_up", True)
            grow = elapsed if up else 0
            inb = base + int(rate.get("in_bps", 0) * grow)
            outb = base // 3 + int(rate.get("out_bps", 0) * grow)
            out[ident] = {"inbytes": str(inb), "outbytes": str(outb),
                          "inpkts": str(inb // 1200), "outpkts": str(outb // 1200)}
        return out

    def traffic(self, q):
        now = time.time()
        result = {"interfaces": {}, "time": now}
        for ident, c in self.counters().items():
            result["interfaces"][ident] = {
                "inbytes": c["inbytes"], "outbytes": c["outbytes"], "inpkts": c["inpkts"],
                "outpkts": c["outpkts"], "inerrs": "0", "outerrs": "0", "collisions": "0",
                "name": ident.upper(),
            }
        return result

    def gateway_status(self, q):
        up = self.state.get("wan_up", True)
        return {"items": [{
            "name": "WAN_DHCP", "address": "198.51.100.1",
            "status": "none" if up else "down",
            "loss": "0.0 %" if up else "100.0 %", "delay": "1.2 ms" if up else "0.0 ms",
            "stddev": "0.3 ms" if up else "0.0 ms", "monitor": "198.51.100.1",
            "status_translated": "Online" if up else "Offline",
        }], "status": "ok"}

    # --- leases -------------------------------------------------------------------------
    def isc_leases(self, q):
        if self.version != "25.1":
            return None  # the ISC server is a plugin from 26.1 on: no such route in core
        now = int(time.time())
        rows = []
        for lease in self.state["leases"]:
            rows.append({
                "address": lease["address"], "binding": "active", "type": "dynamic",
                "status": "online" if lease.get("online") else "offline", "descr": "",
                "mac": lease["hwaddr"], "starts": time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now - 600)),
                "ends": time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now + 6600)),
                "hostname": lease.get("hostname", ""), "state": "active", "man": "",
                "if": "lan", "if_descr": "LAN",
            })
        out = recordset(rows, q)
        out["interfaces"] = {"lan": "LAN"} if rows else {}
        return out

    def kea_leases(self, q):
        # 25.1 installs both servers and ISC is the one serving by default: Kea has no leases.
        source = self.state["leases"] if self.version == "26.1" or self.state.get("kea_on_25", False) else []
        now = int(time.time())
        rows = []
        for lease in source:
            row = {
                "address": lease["address"], "hwaddr": lease["hwaddr"], "client_id": "",
                "valid_lifetime": "4000", "expire": str(now + 3400), "subnet_id": "1",
                "fqdn_fwd": "0", "fqdn_rev": "0", "hostname": lease.get("hostname", ""),
                "state": "0", "user_context": "", "pool_id": "0", "if": "igc1",
                "if_descr": "LAN", "if_name": "lan", "mac_info": "",
            }
            if self.version == "26.1":
                row["is_reserved"] = ""
            rows.append(row)
        out = recordset(rows, q)
        out["interfaces"] = {"lan": "LAN"} if rows else {}
        return out

    def firewall_log(self, q):
        limit = int((q.get("limit") or "1000"))
        out = []
        now = time.time()
        for i, b in enumerate(self.state["blocks"][:limit]):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60 * i))
            proto = b.get("proto", "tcp")
            out.append({
                "rulenr": "5", "subrulenr": "", "anchorname": "", "rid": "02f4bab031b57d1e30553ce08e0ec131",
                "interface": "igc0", "reason": "match", "action": "block", "dir": "in", "ipversion": "4",
                "tos": "0x0", "ecn": "", "ttl": "51", "id": "0", "offset": "0", "ipflags": "DF",
                "protonum": "6" if proto == "tcp" else "17", "protoname": proto, "length": "60",
                "src": b["src"], "dst": b["dst"], "srcport": b.get("srcport", ""), "dstport": b.get("dstport", ""),
                "datalen": "0", "__timestamp__": ts, "__host__": "OPNsense.localdomain",
                "__digest__": "%032x" % (hash((ts, i)) & (2 ** 128 - 1)), "__spec__": [],
                "label": "Default deny / state violation rule",
            })
        return out

    # --- unbound host overrides ---------------------------------------------------------
    def shown_host(self, h):
        if self.version == "25.1":
            # UIModelGrid (25.1): every field by its description, no raw option value.
            return {"uuid": h["uuid"], "enabled": h.get("enabled", "1"), "hostname": h.get("hostname", ""),
                    "domain": h.get("domain", ""), "rr": RR_DESCR.get(h.get("rr", "A"), h.get("rr", "A")),
                    "mxprio": h.get("mxprio", ""), "mx": h.get("mx", ""), "server": h.get("server", ""),
                    "description": h.get("description", "")}
        rr = h.get("rr", "A")
        return {"uuid": h["uuid"], "enabled": h.get("enabled", "1"), "hostname": h.get("hostname", ""),
                "domain": h.get("domain", ""), "rr": rr, "%rr": RR_DESCR.get(rr, rr),
                "mxprio": h.get("mxprio", ""), "mx": h.get("mx", ""), "ttl": h.get("ttl", ""),
                "server": h.get("server", ""), "txtdata": h.get("txtdata", ""),
                "description": h.get("description", "")}

    def search_hosts(self, q):
        with self.lock:
            rows = [self.shown_host(h) for h in self.state["host_overrides"]]
        phrase = (q.get("searchPhrase") or "").lower()
        if phrase:
            rows = [r for r in rows if any(phrase in str(v).lower() for v in r.values())]
        return recordset(rows, q)

    def get_host(self, uuid):
        with self.lock:
            for h in self.state["host_overrides"]:
                if h["uuid"] == uuid:
                    return {"host": self.shown_host(h)}
        return []

    def validate(self, h):
        errors = {}
        name = h.get("hostname", "")
        if name != "*" and not valid_label_list(name, allow_empty=True):
            errors["host.hostname"] = "A valid hostname is required."
        if not valid_label_list(h.get("domain", "")):
            errors["host.domain"] = "A valid domain must be specified."
        if h.get("rr", "A") not in RR_DESCR:
            errors["host.rr"] = "Option not in list."
        if h.get("rr", "A") in ("A", "AAAA") and not valid_ip(h.get("server", "")):
            errors["host.server"] = "A valid IP address must be specified, for example 192.168.100.10."
        if len(h.get("description", "")) > 255:
            errors["host.description"] = "Description should be a string between 1 and 255 characters."
        return errors

    def host_fields(self, body):
        fields = ["enabled", "hostname", "domain", "rr", "mxprio", "mx", "server", "description"]
        if self.version == "26.1":
            fields += ["ttl", "txtdata"]
        src = body.get("host")
        if not isinstance(src, dict):
            return None
        return {k: str(src[k]) for k in fields if k in src}

    def add_host(self, body):
        fields = self.host_fields(body)
        if fields is None:
            return {"result": "failed"}
        h = {"enabled": "1", "hostname": "", "domain": "", "rr": "A", "server": "", "description": ""}
        h.update(fields)
        errors = self.validate(h)
        if errors:
            return {"result": "failed", "validations": errors}
        h["uuid"] = str(uuidlib.uuid4())
        with self.lock:
            self.state["host_overrides"].append(h)
            self.save()
        return {"result": "saved", "uuid": h["uuid"]}

    def set_host(self, uuid, body):
        fields = self.host_fields(body)
        if fields is None or not uuid:
            return {"result": "failed"}
        with self.lock:
            for h in self.state["host_overrides"]:
                if h["uuid"] == uuid:
                    new = dict(h)
                    new.update(fields)
                    errors = self.validate(new)
                    if errors:
                        return {"result": "failed", "validations": errors}
                    h.update(fields)
                    self.save()
                    return {"result": "saved"}
        return {"result": "failed"}

    def del_host(self, uuid):
        with self.lock:
            before = len(self.state["host_overrides"])
            self.state["host_overrides"] = [h for h in self.state["host_overrides"] if h["uuid"] != uuid]
            if len(self.state["host_overrides"]) == before:
                return {"result": "not found"}
            self.save()
        return {"result": "deleted"}

    def reconfigure(self):
        with self.lock:
            self.state["reconfigures"] = self.state.get("reconfigures", 0) + 1
            self.save()
        return {"status": "ok"}


def recordset(rows, q):
    """Base/UIModelGrid.php and ApiControllerBase::searchRecordsetBase: a page of rows."""
    try:
        per = int(q.get("rowCount") or -1)
        cur = int(q.get("current") or 1)
    except ValueError:
        per, cur = -1, 1
    total = len(rows)
    if per > 0:
        rows = rows[(cur - 1) * per: cur * per]
    return {"total": total, "rowCount": len(rows), "current": cur, "rows": rows}


def valid_label_list(name, allow_empty=False):
    if name == "":
        return allow_empty
    if len(name) > 253:
        return False
    for label in name.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in label):
            return False
    return True


def valid_ip(s):
    import ipaddress
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def norm(s):
    return s.replace("_", "").lower()


def make_handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nginx"

        def log_message(self, *a):
            pass

        def reply(self, code, obj):
            body = json.dumps(obj, separators=(",", ":")).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def authorized(self):
            h = self.headers.get("Authorization", "")
            if not h.startswith("Basic "):
                return False
            try:
                k, _, s = base64.b64decode(h[6:]).decode().partition(":")
            except Exception:
                return False
            return hmac.compare_digest(k, fake.key) and hmac.compare_digest(s, fake.secret)

        def handle_any(self, method):
            parts = urlsplit(self.path)
            q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.reply(413, {"errorMessage": "Request too large"})
                return
            raw = self.rfile.read(length) if length else b""
            segs = [s for s in parts.path.split("/") if s]
            if len(segs) < 4 or segs[0] != "api":
                self.reply(404, {"errorMessage": "Endpoint not found"})
                return
            if not self.authorized():
                self.reply(401, {"status": 401, "message": "Authentication Failed"})
                return
            body = {}
            if raw and "json" in (self.headers.get("Content-Type") or ""):
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.reply(400, {"status": 400, "message": "Invalid JSON syntax"})
                    return
                if isinstance(body, dict):
                    q.update({k: str(v) for k, v in body.items() if isinstance(v, (str, int))})
                else:
                    body = {}
            module, controller, action = norm(segs[1]), norm(segs[2]), norm(segs[3])
            arg = segs[4] if len(segs) > 4 else None
            post = method == "POST"
            route = (module, controller, action)
            gets = {
                ("diagnostics", "system", "systeminformation"): fake.system_information,
                ("diagnostics", "system", "systemtime"): fake.system_time,
                ("diagnostics", "system", "systemresources"): fake.system_resources,
                ("diagnostics", "cpuusage", "getcputype"): fake.cpu_type,
                ("core", "firmware", "info"): fake.firmware_info,
                ("core", "system", "status"): fake.core_system_status,
                ("interfaces", "overview", "interfacesinfo"): fake.interfaces_info,
                ("interfaces", "overview", "export"): fake.interfaces_export,
                ("diagnostics", "traffic", "interface"): fake.traffic,
                ("routes", "gateway", "status"): fake.gateway_status,
                ("kea", "leases4", "search"): fake.kea_leases,
                ("unbound", "settings", "searchhostoverride"): fake.search_hosts,
            }
            if route in gets:
                self.reply(200, gets[route](q))
            elif route == ("dhcpv4", "leases", "searchlease"):
                out = fake.isc_leases(q)
                if out is None:
                    self.reply(404, {"errorMessage": "Endpoint not found"})
                else:
                    self.reply(200, out)
            elif route == ("diagnostics", "firewall", "log"):
                self.reply(200, fake.firewall_log(q) if not post else None)
            elif route == ("unbound", "settings", "gethostoverride"):
                self.reply(200, fake.get_host(arg))
            elif route == ("unbound", "settings", "addhostoverride"):
                self.reply(200, fake.add_host(body) if post else {"result": "failed"})
            elif route == ("unbound", "settings", "sethostoverride"):
                self.reply(200, fake.set_host(arg, body) if post else {"result": "failed"})
            elif route == ("unbound", "settings", "delhostoverride"):
                self.reply(200, fake.del_host(arg) if post else {"result": "failed"})
            elif route == ("unbound", "service", "reconfigure"):
                self.reply(200, fake.reconfigure() if post else {"status": "failed"})
            else:
                self.reply(404, {"errorMessage": "Endpoint not found"})

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

    return Handler


def ensure_cert(cert_dir):
    os.makedirs(cert_dir, exist_ok=True)
    cert, key = os.path.join(cert_dir, "cert.pem"), os.path.join(cert_dir, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        # Like OPNsense's installer: a self-signed "Web GUI" certificate for the box's name.
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "397",
             "-subj", "/O=OPNsense/CN=OPNsense.localdomain",
             "-addext", "subjectAltName=DNS:OPNsense.localdomain,IP:127.0.0.1"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--version", choices=["25.1", "26.1"], required=True)
    p.add_argument("--state")
    p.add_argument("--cert-dir", default=None)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--key", default=os.environ.get("OPNSENSE_FAKE_KEY", "fake-key"))
    p.add_argument("--secret", default=os.environ.get("OPNSENSE_FAKE_SECRET", "fake-secret"))
    args = p.parse_args()
    cert_dir = args.cert_dir or os.path.join(os.path.dirname(args.state or "/tmp/x"), "opnsense-cert")
    cert, key = ensure_cert(cert_dir)
    fake = Fake(args)
    server = ThreadingHTTPServer((args.bind, args.port), make_handler(fake))
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
