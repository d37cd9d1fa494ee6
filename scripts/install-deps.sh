#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing ferry needs and
# this machine lacks. Runs `apt-get update` once, and only when something is missing.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libuv1-dev libmsgpack-dev libtoml11-dev
  libprotobuf-dev protobuf-compiler libluajit-5.1-dev
  catch2 libre2-dev zlib1g-dev libssl-dev
  libcli11-dev libspdlog-dev libfmt-dev
  clang libclang-rt-14-dev clang-format
  python3 python3-fluent-logger python3-msgpack python3-pytest
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: nothing missing"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
