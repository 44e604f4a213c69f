#!/bin/sh
# Lints every shell script the daemon runs on devices (daemon/src/**/*.sh, loaded into the
# binary with include_str!) with shellcheck as POSIX sh, since devices run them with `sh -c`.
# Fails on any finding, of any severity; a finding that is wrong for a script is disabled in
# that script with a comment saying why. Needs shellcheck (Debian package `shellcheck`).
set -eu
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || { echo "shellcheck is not installed (apt-get install shellcheck)" >&2; exit 1; }
scripts=$(git ls-files 'daemon/src/*.sh')
[ -n "$scripts" ] || { echo "no daemon/src/**/*.sh found" >&2; exit 1; }
# One path per line and none contains a space (they are ours), so word splitting is safe.
# shellcheck disable=SC2086
shellcheck -s sh $scripts
echo "shellcheck: $(echo "$scripts" | wc -l) scripts clean"
