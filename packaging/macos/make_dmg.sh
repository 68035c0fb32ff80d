#!/usr/bin/env bash
# Build LeanCoder.app and its disk image on macOS: icons, PyInstaller (.app from installer.spec),
# code signing, the .dmg (hdiutil), and notarization with stapling.
#
#   packaging/macos/make_dmg.sh         -> dist/LeanCoder.app, dist/LeanCoder-<version>-<arch>.dmg
#
# Environment (each step is skipped, with a line saying so, when its variables are unset):
#   PYTHON                 interpreter with LeanCoder and PyInstaller (default .venv/bin/python)
#   MACOS_SIGN_IDENTITY    "Developer ID Application: Name (TEAMID)", in the login keychain
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD
#                          notarization credentials (an app-specific password of the Apple ID)
# Build llama.cpp with Metal first: CMAKE_ARGS="-DGGML_METAL=on" pip install llama-cpp-python
# (the shader library is embedded in the dylib, so no .metallib file has to be shipped).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/packaging/macos"
cd "$ROOT"
if [ "$(uname -s)" != Darwin ]; then
    echo "error: make_dmg.sh runs on macOS (it needs iconutil, codesign and hdiutil)" >&2
    exit 2
fi
PY="${PYTHON:-$ROOT/.venv/bin/python}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' app/__init__.py)"
APP="$ROOT/dist/LeanCoder.app"
DMG="$ROOT/dist/LeanCoder-$VERSION-$(uname -m).dmg"

"$PY" packaging/render_icon.py build/icons
iconutil -c icns build/icons/LeanCoder.iconset -o build/icons/LeanCoder.icns
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer.spec
echo "app bundle: $APP ($(du -sh "$APP" | cut -f1))"

"$HERE/sign_app.sh" "$APP"

# The disk image: the app and a link to /Applications to drag it onto.
STAGE="$ROOT/build/dmg"
rm -rf "$STAGE" "$DMG"
mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "LeanCoder" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$DMG"
fi

if [ -z "${MACOS_SIGN_IDENTITY:-}" ]; then
    echo "notarization skipped: the app is not signed (set MACOS_SIGN_IDENTITY)"
elif [ -z "${APPLE_ID:-}" ] || [ -z "${APPLE_TEAM_ID:-}" ] || [ -z "${APPLE_APP_PASSWORD:-}" ]; then
    echo "notarization skipped: set APPLE_ID, APPLE_TEAM_ID and APPLE_APP_PASSWORD"
else
    xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" --wait
    xcrun stapler staple "$DMG"
    xcrun stapler validate "$DMG"
    spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
fi
echo "built $DMG ($(du -h "$DMG" | cut -f1))"
