#!/bin/sh
# Stands in for the install.sh of Rust's release tarballs in an offline build: copies the
# toolchain mirror.sh recorded (this machine's, by rustup) into --prefix.
set -eu
prefix=
for arg in "$@"; do
  case "$arg" in --prefix=*) prefix=${arg#--prefix=} ;; esac
done
: "${prefix:?install.sh: no --prefix given}"
from=$(cat "$(dirname "$0")/toolchain")
mkdir -p "$prefix/bin" "$prefix/lib"
for tool in rustc cargo rustdoc; do cp -a "$from/bin/$tool" "$prefix/bin/"; done
cp -a "$from/lib/." "$prefix/lib/"
