#!/usr/bin/env bash
# Installs nats-server from the Debian package if it is not on PATH (idempotent).
set -euo pipefail
if command -v nats-server >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y nats-server
# The package enables a systemd unit; the benchmark starts its own server, so a running unit is not needed.
command -v nats-server >/dev/null
