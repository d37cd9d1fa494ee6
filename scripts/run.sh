#!/usr/bin/env bash
# Installs what is missing, builds ferryd, and runs it on conf/ferry.toml
# (forward input on 127.0.0.1:24224, every event printed to stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${JOBS:-2}"
exec ./build/ferryd -c conf/ferry.toml "$@"
