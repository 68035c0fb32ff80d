#!/usr/bin/env bash
# Lay out the PyInstaller bundle (dist/LeanCoder/, from build_bundle.sh) as an AppDir, and make an
# AppImage of it where appimagetool is available.
#
#   packaging/linux/build_appimage.sh   -> build/AppDir/ (always; `build/AppDir/AppRun` runs it)
#                                          dist/LeanCoder-<version>-<arch>.AppImage (with appimagetool)
#
# appimagetool is not packaged in Debian or Ubuntu, nor on PyPI or npm (the Python helpers that
# build AppImages download it from the AppImage project's GitHub releases when they run). Put it
# on PATH, or point APPIMAGETOOL at it, to make the AppImage; without it this script says so,
# leaves the AppDir, and exits 0. The hosted CI workflow downloads it (it has the internet).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/packaging/linux"
BUNDLE="$ROOT/dist/LeanCoder"
ICONS="$ROOT/build/icons"
APPDIR="$ROOT/build/AppDir"
cd "$ROOT"

[ -x "$BUNDLE/leancoder" ] || { echo "error: no bundle at $BUNDLE: run packaging/linux/build_bundle.sh" >&2; exit 2; }
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' app/__init__.py)"
ARCH="$(uname -m)"

rm -rf "$APPDIR"
mkdir -p "$APPDIR/usr/lib" "$APPDIR/usr/share/applications" \
    "$APPDIR/usr/share/icons/hicolor/scalable/apps" "$APPDIR/usr/share/icons/hicolor/256x256/apps"
cp -a "$BUNDLE" "$APPDIR/usr/lib/leancoder"
cat > "$APPDIR/AppRun" <<'APPRUN'
#!/bin/sh
# The AppImage's entry point: run the bundle inside the mounted image.
HERE="$(dirname "$(readlink -f "$0")")"
exec "$HERE/usr/lib/leancoder/leancoder" "$@"
APPRUN
chmod 0755 "$APPDIR/AppRun"
install -m 0644 "$HERE/leancoder.desktop" "$APPDIR/leancoder.desktop"
install -m 0644 "$HERE/leancoder.desktop" "$APPDIR/usr/share/applications/leancoder.desktop"
install -m 0644 "$ICONS/leancoder-256.png" "$APPDIR/leancoder.png"
install -m 0644 "$ICONS/leancoder-256.png" "$APPDIR/usr/share/icons/hicolor/256x256/apps/leancoder.png"
install -m 0644 app/ui/icon.svg "$APPDIR/usr/share/icons/hicolor/scalable/apps/leancoder.svg"
ln -sf leancoder.png "$APPDIR/.DirIcon"
echo "AppDir: $APPDIR (run it with $APPDIR/AppRun)"

TOOL="${APPIMAGETOOL:-$(command -v appimagetool || command -v appimagetool-"$ARCH".AppImage || true)}"
if [ -z "$TOOL" ]; then
    echo "skipped the AppImage: appimagetool is not installed (it is not packaged in Debian, Ubuntu,"
    echo "PyPI or npm; get it from the AppImage project's releases and set APPIMAGETOOL=/path/to/it)"
    exit 0
fi
OUT="$ROOT/dist/LeanCoder-$VERSION-$ARCH.AppImage"
# APPIMAGE_EXTRACT_AND_RUN: appimagetool is itself an AppImage, and CI runners lack FUSE.
ARCH="$ARCH" APPIMAGE_EXTRACT_AND_RUN=1 "$TOOL" --no-appstream "$APPDIR" "$OUT"
echo "built $OUT ($(du -h "$OUT" | cut -f1))"
