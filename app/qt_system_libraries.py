"""Before the window starts: are the system libraries Qt's window needs installed?

The PySide6 wheel carries Qt itself but not the X11 (xcb) libraries its xcb platform plugin links
to, nor OpenGL, fontconfig or GLib. On a fresh Debian with X, Qt then aborts the process with a
message that names the plugin (and sometimes a library that is in fact installed), not the
missing one. So the window's start loads the plugin first, the way Qt will, with the dynamic
loader; only when that fails does it try each library by its soname, to name every missing one
and print the exact `apt-get` / `dnf` line that installs them. A frozen bundle that carries the
libraries loads its plugin and passes the first step, so it is never second-guessed.

No Qt module is imported here (importing PySide6.QtGui already needs libGL and fontconfig).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SystemLibrary:
    soname: str
    debian: str  # the Debian/Ubuntu package that holds it
    fedora: str  # the Fedora package that holds it


# What QtGui needs on every Linux platform (offscreen included).
GUI_LIBRARIES: tuple[SystemLibrary, ...] = (
    SystemLibrary("libGL.so.1", "libgl1", "libglvnd-glx"),
    SystemLibrary("libEGL.so.1", "libegl1", "libglvnd-egl"),
    SystemLibrary("libfontconfig.so.1", "libfontconfig1", "fontconfig"),
    SystemLibrary("libfreetype.so.6", "libfreetype6", "freetype"),
    SystemLibrary("libglib-2.0.so.0", "libglib2.0-0", "glib2"),
    SystemLibrary("libdbus-1.so.3", "libdbus-1-3", "dbus-libs"),
    SystemLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
)
# What Qt's xcb plugin (libqxcb.so, through libQt6XcbQpa) links to: `ldd libqxcb.so` on PySide6.
XCB_LIBRARIES: tuple[SystemLibrary, ...] = (
    SystemLibrary("libxcb.so.1", "libxcb1", "libxcb"),
    SystemLibrary("libX11.so.6", "libx11-6", "libX11"),
    SystemLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    SystemLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    SystemLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    SystemLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    SystemLibrary("libxcb-util.so.1", "libxcb-util1", "xcb-util"),
    SystemLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    SystemLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    SystemLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    SystemLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    SystemLibrary("libxcb-render.so.0", "libxcb-render0", "libxcb"),
    SystemLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    SystemLibrary("libxcb-shm.so.0", "libxcb-shm0", "libxcb"),
    SystemLibrary("libxcb-sync.so.1", "libxcb-sync1", "libxcb"),
    SystemLibrary("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb"),
    SystemLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
)
EXIT_MISSING_LIBRARIES = 3

Loader = Callable[[str], None]  # loads a library by soname or path; raises OSError if it cannot


def load_library(name: str) -> None:
    """The dynamic loader, as Qt uses it: search path, RUNPATH, immediate symbol binding."""
    ctypes.CDLL(name)


@dataclass(frozen=True, slots=True)
class LibraryReport:
    missing: tuple[SystemLibrary, ...]
    loader_error: str  # what the loader said about the plugin itself ("" when it loaded)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.loader_error

    def install_lines(self) -> list[str]:
        debian = _unique(lib.debian for lib in self.missing)
        fedora = _unique(lib.fedora for lib in self.missing)
        return [
            f"sudo apt-get install {' '.join(debian)}    # Debian, Ubuntu",
            f"sudo dnf install {' '.join(fedora)}    # Fedora",
        ]

    def message(self) -> str:
        if self.missing:
            names = ", ".join(lib.soname for lib in self.missing)
            lines = [
                f"LeanCoder's window needs system libraries that are not installed: {names}.",
                "Install them with:",
                *(f"    {line}" for line in self.install_lines()),
            ]
        else:
            lines = [f"Qt's window plugin cannot be loaded: {self.loader_error}"]
        lines.append("The commands (`leancoder --help`) work without them.")
        return "\n".join(lines)


def check_libraries(
    plugin: Path | None,
    libraries: Sequence[SystemLibrary],
    loader: Loader = load_library,
) -> LibraryReport:
    """Load `plugin` (when there is one); if that fails, try each of `libraries` by soname."""
    if plugin is not None:
        try:
            loader(str(plugin))
        except OSError as exc:
            plugin_error = str(exc)
        else:
            return LibraryReport((), "")
    else:
        plugin_error = ""
    missing: list[SystemLibrary] = []
    for library in libraries:
        try:
            loader(library.soname)
        except OSError:
            missing.append(library)
    return LibraryReport(tuple(missing), "" if missing else plugin_error)


def qt_plugin(name: str) -> Path | None:
    """The installed PySide6's platform plugin `name` (e.g. "xcb"), found without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "Qt" / "plugins" / "platforms" / f"libq{name}.so"
        if path.is_file():
            return path
    return None


def window_platform(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """The Qt platform the window will use on Linux, as far as the libraries go: "xcb" on X11,
    "other" for anything else (Wayland, offscreen...), None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    wanted = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if wanted:
        return "xcb" if wanted == "xcb" else "other"
    if environ.get("WAYLAND_DISPLAY"):
        return "other"  # Qt tries Wayland first there
    return "xcb" if environ.get("DISPLAY") else "other"


def check_window_libraries(
    environ: dict[str, str] | os._Environ[str] = os.environ,
    loader: Loader = load_library,
) -> LibraryReport:
    """What the window about to start lacks; an empty report off Linux or in a frozen bundle
    (its own libraries, proven by its self-test)."""
    platform = window_platform(environ)
    if platform is None or getattr(sys, "frozen", False):
        return LibraryReport((), "")
    if platform == "xcb":
        return check_libraries(qt_plugin("xcb"), GUI_LIBRARIES + XCB_LIBRARIES, loader)
    return check_libraries(None, GUI_LIBRARIES, loader)


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen
