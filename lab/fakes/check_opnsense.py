#!/usr/bin/env python3
"""Proves lab/fakes/opnsense.py faithful with clients written by others, not by us.

The brief named aiopnsense, but every release of it (1.0.0 to 1.3.2) requires Python >= 3.14
and uses 3.14-only syntax; this machine's newest Python is 3.13. So two other independent
clients from PyPI are used (installed, pinned, by tests/run-all):

  opnsense-api2 0.7.3 (module opnsense_api): parses answers into pydantic models, so a field
      of the wrong type or a missing one fails here. Firmware info (the version), the
      interfaces overview export (WAN up/down), Unbound host overrides (search, add, delete).
  opn-api 0.5.0 (module opn_api): lower-cases every route ("dhcpv4/leases/searchlease"), as
      a PHP router accepts. Gateway status, ISC DHCP leases (25.1), firmware info.

Kea's lease search has no method in either; it is fetched through opnsense-api2's transport.

Usage: check_opnsense.py --url https://127.0.0.1:PORT --key K --secret S --ca CERT --version V
Prints one "ok ..." line per check; exits non-zero on the first failure.
"""

import argparse
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--version", required=True)
    a = p.parse_args()
    api = a.url.rstrip("/") + "/api"

    from opnsense_api.client import Client
    from opnsense_api.pydantic.Unbound import Host

    c = Client(a.key, a.secret, api, verify_cert=a.ca, timeout=5)

    info = c.core_firmware_info()
    assert info.product_version.startswith(a.version), info.product_version
    assert info.product.product_series == a.version, info.product.product_series
    print("ok firmware info", info.product_version)

    export = c.interface_overview_export()
    wan = export.get_by_identifier("wan")
    assert wan is not None and wan.status is not None, "no WAN in the export"
    assert wan.statistics is not None and wan.statistics.bytes_received > 0
    print("ok interfaces export", [(i.identifier, i.status.value) for i in export])

    def search():
        if a.version == "25.1":
            # 25.1's grid shows option fields by their description ("A (IPv4 address)",
            # Base/UIModelGrid.php@25.1), which this client's model (written against 26.x,
            # raw "A" plus "%rr") refuses: read the rows as plain JSON there.
            rows = c._get("unbound/settings/searchHostOverride")["rows"]
            assert all(r["rr"].startswith(("A (", "AAAA (", "MX (", "TXT (")) for r in rows), rows
            return [Host.model_construct(**{k: r.get(k) for k in ("hostname", "domain", "server")}) for r in rows]
        return c.unbound_search_host_override().rows

    before = len(search())
    host = Host(hostname="checkhost", domain="home.arpa", server="192.168.1.77", description="check_opnsense")
    res = c.unbound_add_host_override(host)
    assert res.result == "saved" and res.uuid, res
    rows = search()
    assert len(rows) == before + 1, rows
    added = [h for h in rows if h.hostname == "checkhost"]
    assert added and added[0].server == "192.168.1.77", added
    refused = c.unbound_add_host_override(Host(hostname="x", domain="home.arpa", server="not-an-ip"))
    assert refused.result == "failed", refused
    res = {"uuid": res.uuid}
    gone = c.unbound_del_host_override(res["uuid"])
    assert gone.result == "deleted", gone
    again = c.unbound_del_host_override(res["uuid"])
    assert again.result == "not found", again
    print("ok unbound host overrides", before, "rows")

    from opn_api.api.client import OPNAPIClient, OPNsenseClientConfig
    from opn_api.api.core.firmware import Firmware
    from opn_api.api.core.routes import Gateway
    from opn_api.api.core.dhcp_v4 import Leases
    from opn_api.exceptions import APIException

    o = OPNAPIClient(OPNsenseClientConfig(a.key, a.secret, api, ssl_verify_cert=True, ca=a.ca, timeout=5))
    gw = Gateway(o).status()
    assert gw["status"] == "ok" and gw["items"][0]["name"], gw
    print("ok gateway status", gw["items"][0]["status_translated"])
    fw = Firmware(o).info()
    assert fw["product_version"].startswith(a.version), fw
    try:
        leases = Leases(o).search_lease()
        assert a.version == "25.1", "ISC leases answered on " + a.version
        assert leases["total"] == len(leases["rows"]) and leases["rows"][0]["mac"], leases
        print("ok ISC leases", leases["total"])
    except APIException as e:
        assert a.version != "25.1", e
        print("ok ISC leases absent on", a.version)

    kea = c._get("kea/leases4/search")
    assert set(kea) >= {"total", "rowCount", "current", "rows", "interfaces"}, kea
    print("ok kea leases", kea["total"])

    bad = Client(a.key, "wrong", api, verify_cert=a.ca, timeout=5)
    try:
        bad.core_firmware_info()
        raise AssertionError("a wrong secret was accepted")
    except Exception as e:  # the client's APIException
        assert getattr(e, "status_code", None) == 401, e
    print("ok wrong secret refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
