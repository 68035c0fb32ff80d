"""Render LeanCoder's SVG icon into the raster icons the installers need.

    python packaging/render_icon.py OUT_DIR

writes OUT_DIR/leancoder-<N>.png for N in SIZES (the Linux hicolor theme), OUT_DIR/leancoder.ico
(Windows: PNG-compressed entries, 16 to 256 px) and OUT_DIR/LeanCoder.iconset/ (macOS: `iconutil
-c icns` turns it into LeanCoder.icns). It uses Qt's own SVG renderer from the build environment,
so no image tool has to be installed.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SOURCE = Path(__file__).resolve().parents[1] / "app" / "ui" / "icon.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# macOS .iconset names: size and 2x variants.
ICONSET = {
    "icon_16x16.png": 16, "icon_16x16@2x.png": 32, "icon_32x32.png": 32,
    "icon_32x32@2x.png": 64, "icon_128x128.png": 128, "icon_128x128@2x.png": 256,
    "icon_256x256.png": 256, "icon_256x256@2x.png": 512, "icon_512x512.png": 512,
    "icon_512x512@2x.png": 1024,
}  # fmt: skip


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"could not encode a {size}px PNG")
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file whose entries are PNGs (supported since Windows Vista)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    entries, payload = b"", b""
    for size, png in sorted(pngs.items()):
        side = 0 if size >= 256 else size  # 0 means 256 in an ICO directory entry
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset)
        payload += png
        offset += len(png)
    return header + entries + payload


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: render_icon.py OUT_DIR\n")
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        sys.stderr.write(f"error: {SOURCE} is not a valid SVG\n")
        return 1
    pngs = {size: render_png(renderer, size) for size in {*SIZES, *ICONSET.values()}}
    for size in SIZES:
        (out / f"leancoder-{size}.png").write_bytes(pngs[size])
    (out / "leancoder.ico").write_bytes(ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    iconset = out / "LeanCoder.iconset"
    iconset.mkdir(exist_ok=True)
    for name, size in ICONSET.items():
        (iconset / name).write_bytes(pngs[size])
    print(f"wrote {len(SIZES)} PNGs, leancoder.ico and LeanCoder.iconset/ to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
