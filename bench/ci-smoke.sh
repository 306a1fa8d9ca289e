#!/usr/bin/env bash
# CI smoke step for the benchmark harness: small N, all four systems, under a minute.
# Fails only if the harness crashes or a system cannot be run; targets are reported, not enforced.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/install-nats.sh
npm run bench -- --quick
