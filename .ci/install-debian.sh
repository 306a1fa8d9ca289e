#!/usr/bin/env bash
# Installs the system packages the Python interop test needs on Debian/Ubuntu:
# grpcio and grpc-tools (protoc + the Python gRPC plugin) for /usr/bin/python3.
# Idempotent: exits at once when they are already importable. Run as root.
set -euo pipefail

PYTHON=/usr/bin/python3

if [ -x "$PYTHON" ] && "$PYTHON" -c "import grpc, grpc_tools" >/dev/null 2>&1; then
  echo "python3-grpcio and python3-grpc-tools already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-debian.sh: must run as root (try: sudo $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-grpcio python3-grpc-tools

"$PYTHON" -c "import grpc, grpc_tools; print('grpcio', grpc.__version__)"
