"""The CLI's shared options, its default model, and loading through the window's fit plan.

Through the real parser and `main()` in-process, and `python -m app` as a subprocess, on the
real starter model and a private LEANCODER_DATA_DIR.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.cli.main import _run_reporting_errors, build_parser
from app.core.fit.estimate import (
    GIB,
    MARGIN_BYTES,
    GpuBudget,
    MachineBudget,
    estimate_memory,
    footprint_from_header,
)
from app.core.gguf.header import read_header
from app.core.llm.engine import LoadOptions
from app.core.session.load_plan import planned_options
from app.core.storage.settings import Settings

LOADING_COMMANDS = ("ask", "compare", "bench-thinking", "edit")
SHARED = {"--model", "--ctx", "--gpu-layers", "--threads", "--max-tokens", "--temperature",
          "--seed", "--force-thinking", "--template"}  # fmt: skip


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NO_COLOR": "1", "LEANCODER_DATA_DIR": str(data_dir)},
    )


# -- options ---------------------------------------------------------------------------------


def test_every_option_of_every_command_has_help_text() -> None:
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in _subcommands().items()
        for action in parser._actions
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == []


@pytest.mark.parametrize("command", LOADING_COMMANDS)
def test_loading_commands_share_the_same_options(command: str) -> None:
    parser = _subcommands()[command]
    options = {s for action in parser._actions for s in action.option_strings}
    assert options >= SHARED
    helps = {s: action.help for action in parser._actions for s in action.option_strings}
    # One definition: the same sentence in every command that loads a model.
    reference = {s: a.help for a in _subcommands()["ask"]._actions for s in a.option_strings}
    for name in ("--model", "--ctx", "--gpu-layers", "--threads", "--template"):
        assert helps[name] == reference[name]
    assert "the model last used in the app, else the starter" in str(helps["--model"])
    assert "16,384" in str(helps["--ctx"])


def test_help_in_a_subprocess_lists_the_shared_options(tmp_path: Path) -> None:
    result = run_cli("compare", "--help", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    for option in (*SHARED, "--policy-a", "--policy-b", "--think-budget-b", "--markdown"):
        assert option in result.stdout
    assert "second thinking policy" in result.stdout
    assert not (tmp_path / "data" / "settings.json").exists()  # --help reads no settings


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--ctx", "-5", "must be 0 or more"), ("--gpu-layers", "-2", "-1: all layers"),
     ("--max-tokens", "many", "not a whole number"), ("--threads", "-1", "must be 1 or more")],
)  # fmt: skip
def test_bad_shared_option_values_are_usage_errors(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["ask", option, value, "hi"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# -- the plan: wishes kept -------------------------------------------------------------------


def test_plan_takes_the_context_wish_and_keeps_chosen_gpu_layers(starter_path: Path) -> None:
    gpu_machine = MachineBudget(ram_bytes=16 * GIB, gpus=(GpuBudget("Test GPU", 8 * GIB, 400e9),))
    options, plan = planned_options(starter_path, LoadOptions(n_ctx=2048), gpu_machine)
    assert plan.kind == "gpu" and options.n_gpu_layers == -1 and options.n_ctx == 2048
    kept, plan = planned_options(
        starter_path, LoadOptions(n_ctx=2048, n_gpu_layers=3), gpu_machine, keep_gpu_layers=True
    )
    assert plan.n_gpu_layers == -1 and kept.n_gpu_layers == 3 and kept.n_ctx == 2048
    trained, _ = planned_options(starter_path, LoadOptions(n_ctx=0), gpu_machine)
    assert trained.n_ctx == 8192  # 0: the starter's trained context
    # Short memory halves the wish: RAM for the starter at 4,096 tokens, not at 8,192.
    fp = footprint_from_header(read_header(starter_path))
    ram = MARGIN_BYTES + estimate_memory(fp, 4096).total
    small, plan = planned_options(starter_path, LoadOptions(n_ctx=8192), MachineBudget(ram))
    assert plan.fits and small.n_ctx == 4096
    assert "Context reduced from 8,192 to 4,096 tokens to fit." in plan.notes


def test_load_planned_applies_a_halved_context_and_says_so(starter_path: Path) -> None:
    from app.core.llm.engine import Engine
    from app.core.session.load_plan import load_planned

    fp = footprint_from_header(read_header(starter_path))
    machine = MachineBudget(MARGIN_BYTES + estimate_memory(fp, 4096).total)
    engine = Engine()
    try:
        info = load_planned(engine, starter_path, LoadOptions(n_ctx=8192), machine=machine)
    finally:
        engine.unload()
    assert info.n_ctx == 4096
    assert "Context reduced from 8,192 to 4,096 tokens to fit." in info.notes
    assert any(note.endswith("with a 4,096-token context.") for note in info.notes)


# -- the default model -----------------------------------------------------------------------


@pytest.mark.model
def test_without_model_the_apps_last_model_then_the_starter(
    tmp_path: Path, starter_path: Path
) -> None:
    data = tmp_path / "data"
    ask = ("ask", "--max-tokens", "2", "--seed", "1", "--ctx", "512", "--json", "Hi")
    fresh = run_cli(*ask, data_dir=data)  # no settings file at all
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["model"] == str(starter_path)
    assert "note: no --model: using the starter model" in fresh.stderr

    other = tmp_path / "models" / "my-model.gguf"  # a model the app used, not the starter path
    other.parent.mkdir()
    other.symlink_to(starter_path)
    Settings(last_model=str(other)).save(data / "settings.json")
    last = run_cli(*ask, data_dir=data)
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["model"] == str(other)
    assert "using the model last used in the app, my-model.gguf" in last.stderr

    other.unlink()  # the file was deleted since: the starter, and a note saying why
    gone = run_cli(*ask, data_dir=data)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["model"] == str(starter_path)
    assert f"the app's last model {other} is gone; using the starter" in gone.stderr


@pytest.mark.model
def test_ask_prints_the_fit_plans_reason(data_dir: Path, starter_path: Path) -> None:
    args = build_parser().parse_args(
        ["ask", "--model", "starter", "--ctx", "1024", "--max-tokens", "2", "--seed", "3", "Hi"]
    )
    out, err = io.StringIO(), io.StringIO()
    assert _run_reporting_errors(args.handler, args, out, err) == 0
    _, plan = planned_options(starter_path, LoadOptions(n_ctx=1024))
    assert plan.fits and plan.reason.endswith("with a 1,024-token context.")
    assert f"note: {plan.reason}\n" in err.getvalue()


@pytest.mark.model
def test_explicit_gpu_layers_and_a_too_big_context_are_reported(data_dir: Path) -> None:
    args = build_parser().parse_args(
        ["ask", "--model", "starter", "--ctx", "99999", "--gpu-layers", "0", "--max-tokens", "1",
         "--json", "Hi"]
    )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    assert _run_reporting_errors(args.handler, args, out, err) == 0
    assert "note: Context 99,999 reduced to the model's trained 8,192 tokens." in err.getvalue()
    assert json.loads(out.getvalue())["stats"]["generated_tokens"] == 1


# -- one default context ---------------------------------------------------------------------


def _recommended_contexts() -> list[int]:
    args = build_parser().parse_args(["recommend", "--json", "--no-bandwidth"])
    out = io.StringIO()
    assert _run_reporting_errors(args.handler, args, out, io.StringIO()) == 0
    return [row["n_ctx"] for row in json.loads(out.getvalue())]


def test_recommend_and_the_window_default_to_the_same_context(
    data_dir: Path, qtbot: QtBot, qt_garbage_on_gui_thread: None
) -> None:
    from app.ui.application import create_main_window

    window = create_main_window(autoload=False)
    qtbot.addWidget(window)
    try:
        assert window.settings.n_ctx == 16384
    finally:
        window.close()
        window.store.close()
    contexts = _recommended_contexts()
    assert max(contexts) == 16384 and all(n <= 16384 for n in contexts)
    # The window's setting is the default: change it there and recommend follows.
    Settings(n_ctx=4096, n_ctx_chosen=True).save(data_dir / "settings.json")
    assert max(_recommended_contexts()) == 4096
