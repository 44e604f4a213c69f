#!/bin/sh
# Installs Docker and Compose with the system's package manager, starts Docker and enables it
# at boot, and lets the login use it. Run as root. Progress lines start with "STEP "; only a
# run that prints DONE worked (UNSUPPORTED, NOSOCKET and the exit codes say what failed).
# Packages keep any configuration the owner already has (confold); stdin is closed so no
# prompt can wait forever.
# $1 the device login to add to the docker group, $2 the Docker socket to wait for.
exec </dev/null
user="$1"; sock="$2"
# os-release is the device's own file, read there: nothing to follow here.
# shellcheck disable=SC1091
[ -r /etc/os-release ] && . /etc/os-release
have_compose() { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; }
case " ${ID:-} ${ID_LIKE:-} " in
*" debian "*|*" ubuntu "*|*" raspbian "*)
  export DEBIAN_FRONTEND=noninteractive
  apt="apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
  echo "STEP Updating the list of packages"
  apt-get -q update || exit 11
  echo "STEP Installing Docker"
  $apt install docker.io || exit 12
  if ! have_compose; then
    echo "STEP Installing Docker Compose"
    $apt install docker-compose-v2 || $apt install docker-compose-plugin || $apt install docker-compose || exit 13
  fi ;;
*" fedora "*)
  echo "STEP Installing Docker"
  dnf install -y moby-engine || exit 12
  have_compose || { echo "STEP Installing Docker Compose"; dnf install -y docker-compose || exit 13; } ;;
*" alpine "*)
  echo "STEP Installing Docker"
  apk add --no-cache docker || exit 12
  have_compose || { echo "STEP Installing Docker Compose"; apk add --no-cache docker-cli-compose || exit 13; } ;;
*" arch "*)
  echo "STEP Installing Docker"
  pacman -Sy --noconfirm --needed docker docker-compose || exit 12 ;;
*)
  echo "UNSUPPORTED ${PRETTY_NAME:-this system}"; exit 20 ;;
esac
echo "STEP Starting Docker and enabling it at boot"
if [ -d /run/systemd/system ]; then systemctl enable --now docker || exit 14
elif command -v rc-update >/dev/null 2>&1; then rc-update add docker default; rc-service docker start || exit 14
else update-rc.d docker defaults >/dev/null 2>&1; service docker start || exit 14; fi
i=0
while [ ! -S "$sock" ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
[ -S "$sock" ] || { echo "NOSOCKET"; exit 15; }
if [ "$user" != root ]; then
  echo "STEP Letting $user use Docker"
  usermod -aG docker "$user" 2>/dev/null || addgroup "$user" docker || exit 16
fi
echo DONE
