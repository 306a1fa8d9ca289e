#!/usr/bin/env bash
# Installs the Debian packages the tests and the benchmark start for real:
#   python3-grpcio, python3-grpc-tools  the Python interop slave (protoc + the Python gRPC plugin)
#   nats-server                         cluster mode's engine (tests start it on free ports)
#   chromium                            the dashboard's browser tests (driven by playwright-core; no download)
#   redis-server                        the Socket.IO redis-adapter anchor of the cluster benchmark
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail

PYTHON=/usr/bin/python3
missing=()
if ! { [ -x "$PYTHON" ] && "$PYTHON" -c "import grpc, grpc_tools" >/dev/null 2>&1; }; then
  missing+=(python3 python3-grpcio python3-grpc-tools)
fi
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
  echo "Debian packages already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-debian.sh: must run as root to install ${missing[*]} (try: sudo $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
# Packaged services are not needed running: tests and the benchmark start their own on free ports.
for service in nats-server redis-server; do
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$service" >/dev/null 2>&1 || true; fi
done

"$PYTHON" -c "import grpc, grpc_tools; print('grpcio', grpc.__version__)"
nats-server --version
/usr/bin/chromium --version
redis-server --version
