#!/bin/sh
# What the pre-flight needs from the device's shell, in one round trip: which Compose is
# installed (prints compose=v2, compose=v1 or compose=none) and whether the app folder is
# free (folder=free or folder=taken).
# $1 the Docker socket, $2 the app folder.
export DOCKER_HOST="unix://$1"
if docker compose version >/dev/null 2>&1; then echo compose=v2
elif command -v docker-compose >/dev/null 2>&1; then echo compose=v1
else echo compose=none; fi
if [ -e "$2" ]; then echo folder=taken; else echo folder=free; fi
