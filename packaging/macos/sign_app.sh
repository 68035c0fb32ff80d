#!/usr/bin/env bash
# Sign LeanCoder.app for distribution: every Mach-O file inside it first (dylibs, Python extension
# modules, Qt's framework binaries and plugins), deepest first, then the app itself, all with the
# hardened runtime, a secure timestamp and packaging/macos/entitlements.plist. Notarization
# requires exactly this.
#
#   MACOS_SIGN_IDENTITY="Developer ID Application: Name (TEAMID)" packaging/macos/sign_app.sh dist/LeanCoder.app
#
# Without MACOS_SIGN_IDENTITY it says so and exits 0: the app keeps PyInstaller's ad-hoc
# signature, which runs on the machine that built it (Gatekeeper blocks it elsewhere).
set -euo pipefail
APP="${1:?usage: sign_app.sh LeanCoder.app}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENTITLEMENTS="$HERE/entitlements.plist"
if [ -z "${MACOS_SIGN_IDENTITY:-}" ]; then
    echo "signing skipped: MACOS_SIGN_IDENTITY is not set (the app stays ad-hoc signed)"
    exit 0
fi
sign() {
    codesign --force --timestamp --options runtime --entitlements "$ENTITLEMENTS" \
        --sign "$MACOS_SIGN_IDENTITY" "$1"
}

# Every Mach-O file, deepest path first, so a container is signed after what it contains.
count=0
while IFS= read -r file; do
    if file -b "$file" | grep -q 'Mach-O'; then
        sign "$file"
        count=$((count + 1))
    fi
done < <(find "$APP/Contents" -type f ! -path "$APP/Contents/MacOS/*" \
    | awk -F/ '{ print NF "\t" $0 }' | sort -rn | cut -f2-)
# Qt's frameworks are bundles of their own: seal each after its binary.
while IFS= read -r framework; do
    sign "$framework"
done < <(find "$APP/Contents" -type d -name '*.framework' | awk -F/ '{ print NF "\t" $0 }' | sort -rn | cut -f2-)
sign "$APP/Contents/MacOS/leancoder"
sign "$APP"
codesign --verify --deep --strict --verbose=2 "$APP"
echo "signed $count Mach-O files and $APP as $MACOS_SIGN_IDENTITY"
