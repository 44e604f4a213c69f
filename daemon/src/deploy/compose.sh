#!/bin/sh
# Runs Docker Compose for one app in its folder.
# $1 the app folder, $2 the Compose project, $3 the Docker socket, $4 the Compose the
# pre-flight found (v1 or v2; anything else: look again), then the Compose arguments.
# The env file is shell-quoted by Homelab (see render.rs), so sourcing it only assigns
# variables; `set -a` exports them for Compose to interpolate.
dir=$1; project=$2; socket=$3; flavour=$4; shift 4
cd "$dir" || { echo "the app folder $dir is missing" >&2; exit 125; }
# app.env exists only on the device (written by write_app.sh), so there is nothing to follow.
# shellcheck disable=SC1091
if [ -f ./app.env ]; then set -a; . ./app.env; set +a; fi
export DOCKER_HOST="unix://$socket"
if [ "$flavour" != v1 ] && [ "$flavour" != v2 ]; then
  if docker compose version >/dev/null 2>&1; then flavour=v2; else flavour=v1; fi
fi
# An app with a name joins Homelab's proxy through a second file (written by write_app.sh).
if [ -f compose.proxy.yaml ]; then set -- -f compose.proxy.yaml "$@"; fi
# One using the device's shared database joins its network through a third.
if [ -f compose.pool.yaml ]; then set -- -f compose.pool.yaml "$@"; fi
if [ "$flavour" = v2 ]; then exec docker compose -p "$project" -f compose.yaml "$@"; fi
if command -v docker-compose >/dev/null 2>&1; then exec docker-compose -p "$project" -f compose.yaml "$@"; fi
echo "Docker Compose is not installed on this device" >&2
exit 127
