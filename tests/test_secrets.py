"""Secrets inside ordinary files never reach the model unasked: real folders, detect-secrets' real
rules, the real CLI in a subprocess. The keys below are made up (right shape, no account)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.workspace import secret_rules, secrets
from app.core.workspace.context import build_context
from app.core.workspace.scan import scan_all

AWS_ID = "AKIAZ7QJ4PXKM2ST5VBN"
AWS_SECRET = "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"
GITHUB = "ghp_R8x2Lq9ZtV4mN7cK1pW3sY6hJ0dF5gA2bE8u"
OPENAI = "sk-proj-Ab3dE5fG7hJ9kL1mN3pQT3BlbkFJr5sT7uV9wX1yZ3aB5cD7"
SLACK = "xoxb-2837465019-5647382910-Zq8Rt3Yu6Io9Pa2Sd5Fg7Hj"
KEY_BODY = "MIIEowIBAAKCAQEAu5Vq9ZKQx7dJ3Lw0nF2kY8pR4tS6vB1mC9xE0aH7gN3jQ5"
ALL_SECRETS = (AWS_ID, AWS_SECRET, GITHUB, OPENAI, SLACK, KEY_BODY)

SETTINGS_PY = f'''import os

DEBUG = False
AWS_ACCESS_KEY_ID = "{AWS_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
GITHUB_TOKEN = "{GITHUB}"


def client():
    return make_client(api_key="{OPENAI}")


SLACK_HOOK = "{SLACK}"
DATABASE = os.environ["DATABASE_URL"]
'''
ENVRC = f"export AWS_ACCESS_KEY_ID={AWS_ID}\nexport OPENAI_API_KEY={OPENAI}\nlayout python\n"
KUBECONFIG = f"""apiVersion: v1
kind: Config
users:
- name: ci
  user:
    token: {GITHUB}
contexts:
- name: prod
"""


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".kube").mkdir(parents=True)
    (root / "settings.py").write_text(SETTINGS_PY)
    (root / ".envrc").write_text(ENVRC)
    (root / ".kube" / "config").write_text(KUBECONFIG)
    # A private key after the first 8 KB: the scan's quick look at the head cannot see it.
    filler = "".join(f"def helper_{i}():\n    return {i}\n\n" for i in range(600))
    assert len(filler) > 9000
    key = (
        f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n{KEY_BODY[::-1]}\n"
        "-----END RSA PRIVATE KEY-----\n"
    )
    (root / "deploy.py").write_text(filler + 'PEM = """\n' + key + '"""\n\nAFTER = 1\n')
    (root / "clean.py").write_text("def add(a, b):\n    return a + b\n")
    (root / ".env").write_text(f"OPENAI_API_KEY={OPENAI}\n")
    return root


def test_each_kind_is_found_on_its_line() -> None:
    found = secrets.find_secrets("settings.py", SETTINGS_PY)
    by_line = {f.line: f.kind for f in found}
    assert by_line == {
        4: "AWS Access Key",
        5: "AWS Access Key",
        6: "GitHub Token",
        10: "OpenAI Token",
        13: "Slack Token",
    }
    assert secrets.find_secrets("clean.py", "def add(a, b):\n    return a + b\n") == []


def test_the_whole_fast_path_finds_what_detect_secrets_line_by_line_finds() -> None:
    """The whole-text first look may only skip lines no plugin would flag."""
    text = SETTINGS_PY + ENVRC + KUBECONFIG + 'password = "hunter2isbad"\n'
    lines = [line.rstrip() for line in text.splitlines()]
    slow = set()
    for index in range(len(lines)):
        for plugin in secret_rules._plugins():
            if secret_rules._confirm(plugin, "x.py", lines, index) is not None:
                slow.add(index + 1)
    assert {f.line for f in secrets.find_secrets("x.py", text)} == slow
    assert len(slow) >= 9


def test_selected_files_go_with_their_secret_lines_redacted(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    listed = [f.path for f in scan_all(root).files]
    assert {"settings.py", ".envrc", ".kube/config", "deploy.py"} <= set(listed)
    assert ".env" not in listed  # skipped by name, as before
    selected = ["settings.py", ".envrc", ".kube/config", "deploy.py"]
    ctx = build_context(root, listed, selected, 100_000, secret_cache=secrets.SecretCache())
    for value in ALL_SECRETS:
        assert value not in ctx.text
    assert [i.path for i in ctx.included] == selected  # the code still goes
    assert 'DATABASE = os.environ["DATABASE_URL"]' in ctx.text
    assert "def helper_599():" in ctx.text and "AFTER = 1" in ctx.text
    assert "-----END RSA PRIVATE KEY-----" not in ctx.text  # the whole block, END line too
    redacted = {r.path: r for r in ctx.redacted}
    assert set(redacted) == set(selected)
    assert redacted["settings.py"].lines == (4, 5, 6, 10, 13)
    assert redacted["settings.py"].reason == (
        "secrets redacted: lines 4-6, 10, 13 (AWS Access Key, GitHub Token, OpenAI Token, "
        "Slack Token)"
    )
    key_line = 1 + 1800 + 1  # 600 helpers of three lines, then 'PEM = """'
    assert redacted["deploy.py"].lines == tuple(range(key_line, key_line + 4))
    assert "In settings.py, lines 4-6, 10, 13 hold secrets" in ctx.text
    assert "    [LeanCoder removed this line: it holds a secret (OpenAI Token)]" in ctx.text
    assert "with secrets redacted" in ctx.summary()


def test_allowing_a_file_sends_it_as_it_is(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    listed = [f.path for f in scan_all(root).files]
    ctx = build_context(
        root, listed, ["settings.py", ".env", "clean.py"], 100_000,
        allow_secrets=["settings.py", ".env"],
    )  # fmt: skip
    assert [i.path for i in ctx.included] == ["settings.py", ".env", "clean.py"]
    assert AWS_ID in ctx.text and OPENAI in ctx.text
    assert ctx.redacted == []
    without = build_context(root, listed, [".env"], 100_000)
    assert without.included == [] and without.left_out[0].reason.startswith("looks like a secret")


def test_findings_are_cached_by_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "conf.py"
    path.write_text(f'TOKEN = "{GITHUB}"\n')
    cache = secrets.SecretCache()
    first = cache.findings(str(path), path.stat(), path.read_text())
    assert cache.findings(str(path), path.stat(), path.read_text()) is first
    path.write_text(f'NAME = "x"\nTOKEN = "{GITHUB}"\n')
    again = cache.findings(str(path), path.stat(), path.read_text())
    assert [f.line for f in again] == [2]


def test_a_big_file_scans_in_bounded_time(tmp_path: Path) -> None:
    """1 MB of code (the largest file the scan lists): measured about 1.4 µs a character."""
    body = Path(secrets.__file__).read_text()
    text = (body * (1024 * 1024 // len(body) + 1))[: 1024 * 1024]
    start = time.perf_counter()
    secrets.find_secrets("big.py", text)
    elapsed = time.perf_counter() - start
    print(f"find_secrets over 1 MB: {elapsed:.2f} s")
    assert elapsed < 10


def test_the_scan_itself_does_not_read_whole_files(tmp_path: Path) -> None:
    """Listing stays a name-and-head scan: the secret deep in deploy.py is not the scan's."""
    root = _folder(tmp_path)
    result = scan_all(root)
    assert "deploy.py" in [f.path for f in result.files]
    env = next(s for s in result.skipped if s.path == ".env")
    assert env.secret


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=cwd,
        env=env, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.timeout(240)
def test_cli_context_redacts_and_allows(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    repo = Path(__file__).resolve().parents[1]
    run = _cli("context", "--folder", str(root), "--select", "settings.py", "deploy.py", cwd=repo)
    assert run.returncode == 0, run.stderr
    for value in ALL_SECRETS:
        assert value not in run.stdout
    assert "redacted: settings.py: secrets redacted: lines 4-6, 10, 13" in run.stderr
    assert "--allow-secrets settings.py" in run.stderr
    run = _cli(
        "context", "--folder", str(root), "--select", "settings.py", "--allow-secrets",
        "settings.py", "--json", cwd=repo,
    )  # fmt: skip
    data = json.loads(run.stdout)
    assert AWS_ID in data["text"] and data["redacted"] == []
    run = _cli("files", "--folder", str(root), "--skipped", "--check-contents", cwd=repo)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(
        line.startswith(".kube/config") and "secrets redacted: line 6 (GitHub Token)" in line
        for line in lines
    )
    assert any(line.startswith(".envrc") and "AWS Access Key, OpenAI Token" in line
               for line in lines)
    assert not any(line.startswith("clean.py") and "secret" in line for line in lines)
