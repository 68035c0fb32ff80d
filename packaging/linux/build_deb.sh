#!/usr/bin/env bash
# Package the PyInstaller bundle (dist/LeanCoder/, from build_bundle.sh) as a .deb:
#
#   /opt/leancoder/                     the bundle (leancoder + _internal/)
#   /usr/bin/leancoder                  launcher on PATH
#   /usr/share/applications/leancoder.desktop
#   /usr/share/icons/hicolor/{scalable,48x48,128x128,256x256}/apps/leancoder.{svg,png}
#
#   packaging/linux/build_deb.sh        -> dist/leancoder_<version>_<arch>.deb
#
# DEB_COMPRESSION (zstd, xz, gzip or none; default zstd: xz takes minutes on the model and saves
# little; use gzip for dpkg older than 1.21.18) picks the compressor; DEB_MAINTAINER sets
# the Maintainer field.
# The bundle carries its own Python, Qt and llama.cpp, so the package depends only on what the
# bundle links to but does not carry (checked below against the build machine's packages).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/packaging/linux"
BUNDLE="$ROOT/dist/LeanCoder"
ICONS="$ROOT/build/icons"
cd "$ROOT"

for tool in dpkg-deb:dpkg fakeroot:fakeroot objdump:binutils; do
    command -v "${tool%%:*}" >/dev/null \
        || { echo "error: ${tool%%:*} is needed (apt-get install ${tool#*:})" >&2; exit 2; }
done
[ -x "$BUNDLE/leancoder" ] || { echo "error: no bundle at $BUNDLE: run packaging/linux/build_bundle.sh" >&2; exit 2; }
[ -f "$ICONS/leancoder-256.png" ] || { echo "error: no icons in $ICONS: run packaging/linux/build_bundle.sh" >&2; exit 2; }

VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' app/__init__.py)"
ARCH="$(dpkg --print-architecture)"
# The newest glibc symbol version any bundled file needs is the oldest glibc it runs on.
GLIBC="$(find "$BUNDLE" -type f \( -name '*.so*' -o -name leancoder \) -exec objdump -T {} + 2>/dev/null \
    | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
# Not carried by the bundle: glibc; libGL/libEGL (they belong to the graphics driver); libxcb
# (tied to the X server). Wayland libraries only for the Wayland platform plugin, fonts for text.
DEPENDS="libc6 (>= ${GLIBC:-2.31}), libgl1, libegl1, libxcb1"
RECOMMENDS="libwayland-client0, libwayland-cursor0, libwayland-egl1, fonts-dejavu-core | fonts-liberation2"

STAGE="$ROOT/build/deb/leancoder_${VERSION}_${ARCH}"
OUT="$ROOT/dist/leancoder_${VERSION}_${ARCH}.deb"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/icons/hicolor/scalable/apps" "$STAGE/usr/share/doc/leancoder"
cp -a "$BUNDLE" "$STAGE/opt/leancoder"

cat > "$STAGE/usr/bin/leancoder" <<'LAUNCHER'
#!/bin/sh
# LeanCoder's launcher: the app lives in /opt/leancoder (a self-contained PyInstaller bundle).
exec /opt/leancoder/leancoder "$@"
LAUNCHER
install -m 0644 "$HERE/leancoder.desktop" "$STAGE/usr/share/applications/leancoder.desktop"
install -m 0644 app/ui/icon.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/leancoder.svg"
for size in 48 128 256; do
    mkdir -p "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps"
    install -m 0644 "$ICONS/leancoder-$size.png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/leancoder.png"
done
cat > "$STAGE/usr/share/doc/leancoder/copyright" <<'COPYRIGHT'
LeanCoder: private, local AI coding.
License: Apache-2.0 (see /usr/share/common-licenses/Apache-2.0).
The bundle in /opt/leancoder also carries Python (PSF license), Qt and PySide6 (LGPL-3.0),
llama.cpp (MIT) and the SmolLM2-135M-Instruct starter model (Apache-2.0).
COPYRIGHT

for script in postinst postrm; do
    install -m 0755 "$HERE/deb/$script" "$STAGE/DEBIAN/$script"
done
# Owners come from fakeroot (root); modes are normalised: nothing group- or world-writable.
chmod -R u+rwX,go+rX,go-w "$STAGE"
chmod 0755 "$STAGE/usr/bin/leancoder" "$STAGE/opt/leancoder/leancoder"

INSTALLED_KB="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: leancoder
Version: $VERSION
Architecture: $ARCH
Maintainer: ${DEB_MAINTAINER:-LeanCoder developers <noreply@leancoder.invalid>}
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS
Recommends: $RECOMMENDS
Section: devel
Priority: optional
Description: private, local AI coding assistant
 LeanCoder runs a quantized language model with llama.cpp on this machine and
 streams its replies into a chat. It makes no network connection unless the
 user starts a model download: no telemetry, no update check. A small starter
 model is included, so it works on a machine with no network at all.
CONTROL

"$HERE/check_deb_depends.sh" "$STAGE/opt/leancoder" "$DEPENDS, $RECOMMENDS"

COMPRESSION="${DEB_COMPRESSION:-zstd}"
mkdir -p "$(dirname "$OUT")"
fakeroot -- dpkg-deb -Z"$COMPRESSION" --build "$STAGE" "$OUT" >/dev/null
echo "built $OUT ($(du -h "$OUT" | cut -f1), installs $((INSTALLED_KB / 1024)) MB; Depends: $DEPENDS)"
