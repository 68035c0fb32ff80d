"""The window's start checks Qt's system libraries before Qt loads (issue #12 item 1).

A real missing library: a shared object built here links to a dependency that is then deleted, so
the dynamic loader refuses it exactly as it refuses libqxcb.so on a Debian without libxcb-cursor0.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from app import qt_system_libraries as qsl
from app.cli.main import main

FAKE = qsl.SystemLibrary("libleancoder-fakexcb.so.0", "libleancoder-fakexcb0", "leancoder-fakexcb")


def _plugin_with_missing_dependency(folder: Path) -> Path:
    """A 'platform plugin' that links to libleancoder-fakexcb.so.0, which no longer exists."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build a shared object")
    (folder / "dep.c").write_text("int fake_xcb_connect(void) { return 1; }\n")
    (folder / "plugin.c").write_text(
        "int fake_xcb_connect(void);\nint plugin_entry(void) { return fake_xcb_connect(); }\n"
    )
    dep = folder / FAKE.soname
    subprocess.run(
        ["gcc", "-shared", "-fPIC", f"-Wl,-soname,{FAKE.soname}", "-o", str(dep),
         str(folder / "dep.c")],
        check=True,
    )  # fmt: skip
    plugin = folder / "libqfake.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(plugin), str(folder / "plugin.c"), str(dep)],
        check=True,
    )
    dep.unlink()  # now the loader cannot find it, as on a machine without the package
    return plugin


def test_a_plugin_whose_library_is_missing_names_the_packages(tmp_path: Path) -> None:
    plugin = _plugin_with_missing_dependency(tmp_path)
    report = qsl.check_libraries(plugin, (*qsl.XCB_LIBRARIES, FAKE))
    assert not report.ok
    assert report.missing == (FAKE,)  # every real xcb library is installed on this machine
    message = report.message()
    assert "libleancoder-fakexcb.so.0" in message
    assert "sudo apt-get install libleancoder-fakexcb0    # Debian, Ubuntu" in message
    assert "sudo dnf install leancoder-fakexcb    # Fedora" in message


def test_every_missing_library_is_named_once_per_package(tmp_path: Path) -> None:
    gone = [
        qsl.SystemLibrary("libleancoder-a.so.0", "liba0", "xcb-util-a"),
        qsl.SystemLibrary("libleancoder-b.so.0", "libb0", "xcb-util-a"),  # one Fedora package
    ]
    report = qsl.check_libraries(None, [*gone, *qsl.GUI_LIBRARIES])
    assert report.missing == tuple(gone)
    assert report.install_lines() == [
        "sudo apt-get install liba0 libb0    # Debian, Ubuntu",
        "sudo dnf install xcb-util-a    # Fedora",
    ]


def test_a_plugin_that_fails_for_another_reason_says_what_the_loader_said(tmp_path: Path) -> None:
    broken = tmp_path / "libqbroken.so"
    broken.write_bytes(b"not an ELF file")
    report = qsl.check_libraries(broken, qsl.XCB_LIBRARIES)
    assert report.missing == ()
    assert "libqbroken.so" in report.loader_error
    assert report.message().startswith("Qt's window plugin cannot be loaded: ")


def test_this_machine_has_what_the_real_xcb_plugin_needs() -> None:
    plugin = qsl.qt_plugin("xcb")
    assert plugin is not None and plugin.name == "libqxcb.so"
    assert qsl.check_window_libraries({"DISPLAY": ":0"}).ok


@pytest.mark.parametrize(
    ("environ", "platform"),
    [
        ({"DISPLAY": ":0"}, "xcb"),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "other"),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "other"),
        ({"QT_QPA_PLATFORM": "xcb:foo=1"}, "xcb"),
        ({}, "other"),
    ],
)
def test_which_platform_the_check_is_for(environ: dict[str, str], platform: str) -> None:
    assert qsl.window_platform(environ) == platform


def test_the_window_command_exits_with_the_install_line_before_qt_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = _plugin_with_missing_dependency(tmp_path)
    monkeypatch.setattr(qsl, "qt_plugin", lambda name: plugin)
    monkeypatch.setattr(qsl, "XCB_LIBRARIES", (*qsl.XCB_LIBRARIES, FAKE))
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    import app.ui.application

    def window_started(model: str | None = None) -> int:
        raise AssertionError("the window started without its libraries")

    monkeypatch.setattr(app.ui.application, "run_gui", window_started)
    err = io.StringIO()
    with redirect_stderr(err):
        status = main(["gui"])
    assert status == qsl.EXIT_MISSING_LIBRARIES
    assert "sudo apt-get install libleancoder-fakexcb0" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def _hide_libraries_command(sonames: list[str]) -> str | None:
    """A shell line that hides system libraries in a private mount namespace (an empty file
    bound over each, so the loader refuses them as on a machine without the package)."""
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        return None  # not allowed here (needs root or user namespaces)
    binds = []
    for soname in sonames:
        found = [p for p in (Path("/lib/x86_64-linux-gnu"), Path("/usr/lib64"), Path("/usr/lib"))
                 if (p / soname).exists()]  # fmt: skip
        if not found:
            return None
        binds.append(f"mount --bind /dev/null {(found[0] / soname).resolve()}")
    return " && ".join(binds)


def test_make_run_on_a_machine_without_xcb_libraries_prints_the_install_lines(
    tmp_path: Path,
) -> None:
    """`python -m app` (what `make run` runs) with three of Qt's X11 libraries hidden: the
    message names exactly those and their packages, and the process exits 3 instead of Qt's
    abort (exit 134, naming only libxcb-cursor0)."""
    hidden = ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0"]
    hide = _hide_libraries_command(hidden)
    if hide is None:
        pytest.skip("needs unshare -m and the Debian xcb libraries to hide")
    env = {
        "PATH": "/usr/bin:/bin",
        "DISPLAY": ":99",  # no X server is needed: the check runs before Qt connects
        "LEANCODER_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{hide} && exec "$0" -m app', sys.executable],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == qsl.EXIT_MISSING_LIBRARIES, result.stderr
    assert (
        "needs system libraries that are not installed: libxkbcommon-x11.so.0, "
        "libxcb-cursor.so.0, libxcb-icccm.so.4." in result.stderr
    )
    assert "sudo apt-get install libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4" in result.stderr
    assert "sudo dnf install libxkbcommon-x11 xcb-util-cursor xcb-util-wm" in result.stderr
    assert "Traceback" not in result.stderr and "qt.qpa" not in result.stderr
