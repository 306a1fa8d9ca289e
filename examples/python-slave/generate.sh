#!/usr/bin/env bash
# Generates the Python message and gRPC stubs of the NetSync contract.
#   ./generate.sh            writes ./gen (git-ignored), where slave.py looks
#   ./generate.sh OUT_DIR    writes OUT_DIR; run slave.py with PYTHONPATH=OUT_DIR
# Needs grpcio-tools: `apt-get install python3-grpc-tools` (see .ci/install-debian.sh)
# or `pip install grpcio-tools`. Set PYTHON to use another interpreter.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$here/gen}" && cd "${1:-$here/gen}" && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"

cd "$here"
"$PYTHON" -m grpc_tools.protoc -I ../../proto --python_out="$out" --grpc_python_out="$out" \
  ../../proto/netsync/v1/netsync.proto
echo "generated $out/netsync/v1/netsync_pb2.py and netsync_pb2_grpc.py"
