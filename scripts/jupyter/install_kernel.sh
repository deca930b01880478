#!/usr/bin/env bash
# Installs the velua Jupyter kernelspec for this checkout into a directory the user controls:
#   bash scripts/jupyter/install_kernel.sh [DIR]   (default: ~/.local/share/jupyter/kernels/velua)
# With DIR given, point Jupyter at it with JUPYTER_PATH=DIR/.. (the parent of kernels/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd -P)
DEST=${1:-$HOME/.local/share/jupyter/kernels/velua}
mkdir -p "$DEST"
cat > "$DEST/kernel.json" <<JSON
{
  "argv": ["/usr/bin/python3", "$ROOT/scripts/jupyter/velua_kernel.py", "-f", "{connection_file}"],
  "display_name": "velua (Lua 5.4)",
  "language": "lua",
  "interrupt_mode": "signal"
}
JSON
echo "velua kernel installed in $DEST"
