#!/bin/sh
# Decides from the device's point of view whether Docker is there, running, usable by this
# login, and which Compose is installed. Prints one word for Docker (NO_DOCKER, NOT_RUNNING,
# NO_ACCESS) and stops, or one for Compose (COMPOSE_V2, COMPOSE_V1, NO_COMPOSE).
# $1 the Docker socket.
sock="$1"
if ! command -v docker >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then echo NO_DOCKER; exit 0; fi
if [ ! -S "$sock" ]; then echo NOT_RUNNING; exit 0; fi
if [ ! -r "$sock" ] || [ ! -w "$sock" ]; then echo NO_ACCESS; exit 0; fi
if docker compose version >/dev/null 2>&1; then echo COMPOSE_V2
elif command -v docker-compose >/dev/null 2>&1; then echo COMPOSE_V1
else echo NO_COMPOSE; fi
