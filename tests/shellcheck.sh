#!/bin/sh
# Lints the project's shell scripts with shellcheck:
# - every script the daemon runs on devices (daemon/src/**/*.sh, loaded into the binary with
#   include_str!), as POSIX sh since devices run them with `sh -c`, failing on any finding of
#   any severity;
# - every other script in the repository (build, image, lab, tests, benchmarks, the appliance's
#   own), as its shebang says, failing on warnings and errors.
# A finding that is wrong for a script is disabled in that script with a comment saying why.
# Needs shellcheck (Debian package `shellcheck`).
set -eu
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || { echo "shellcheck is not installed (apt-get install shellcheck)" >&2; exit 1; }
scripts=$(git ls-files 'daemon/src/*.sh')
[ -n "$scripts" ] || { echo "no daemon/src/**/*.sh found" >&2; exit 1; }
# One path per line and none contains a space (they are ours), so word splitting is safe.
# shellcheck disable=SC2086
shellcheck -s sh $scripts
# The rest: tracked files whose first line names sh or bash.
others=$(git ls-files -z | xargs -0 grep -slE '^#!(/usr/bin/env (ba)?sh|/bin/(ba)?sh)' | grep -v '^daemon/src/' || true)
# shellcheck disable=SC2086
shellcheck -x -S warning $others
echo "shellcheck: $(echo "$scripts" | wc -l) device scripts and $(echo "$others" | wc -l) other scripts clean"
