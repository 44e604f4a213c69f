#!/bin/sh
# Reads everything but Docker about a device in one round trip, as key=value lines that
# devices/facts.rs parses. Fixed script; $1 is the path whose disk is measured (where Docker
# keeps its data).
echo "hostname=$(hostname)"
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
# os-release is the device's own file, read there: nothing to follow here.
# shellcheck disable=SC1091
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$NAME}"; fi
echo "cores=$(grep -c '^processor' /proc/cpuinfo)"
echo "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
awk '/^MemTotal:/ {print "mem_total_kb=" $2} /^MemAvailable:/ {print "mem_available_kb=" $2}' /proc/meminfo
echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
echo "uptime=$(cut -d' ' -f1 /proc/uptime)"
p="$1"; [ -e "$p" ] || p=/
df -Pk "$p" | awk -v p="$p" 'NR==2 {print "disk_path=" p; print "disk_total_kb=" $2; print "disk_free_kb=" $4}'
printf 'ports='
# Each word is one port number in hex (no spaces in them), so splitting into words is meant.
# shellcheck disable=SC2013
for h in $(awk 'NR > 1 && ($4 == "0A" || $4 == "07") { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null | sort -u); do
  printf '%d ' "0x$h"
done
echo
# Ports listened on only on loopback addresses (systemd-resolved's 127.0.0.53:53): an app that
# publishes a port on the device's own address does not clash with them. /proc/net shows an
# IPv4 address as the hex of its bytes in host order, so 127.x.y.z ends in 7F.
printf 'local_ports='
# shellcheck disable=SC2013
for h in $(awk 'NR > 1 && ($4 == "0A" || $4 == "07") {
    n = split($2, a, ":"); port = a[n]; addr = a[1]
    lo = (length(addr) == 8 && substr(addr, 7, 2) == "7F") || addr == "00000000000000000000000001000000"
    if (!(port in seen)) seen[port] = 1
    if (!lo) seen[port] = 0
  } END { for (p in seen) if (seen[p]) print p }' /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null | sort -u); do
  printf '%d ' "0x$h"
done
echo
# Graphics chips an app could use (video transcoding, photo recognition): a DRM render node
# (Intel, AMD, and most ARM boards) or NVIDIA's device. An unmatched pattern stays as written
# and fails the -e test, so no match prints an empty list.
printf 'gpu='
for d in /dev/dri/renderD* /dev/nvidia0; do
  if [ -e "$d" ]; then printf '%s ' "$d"; fi
done
echo
