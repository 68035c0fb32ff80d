"""Where LeanCoder keeps its data. `LEANCODER_DATA_DIR` overrides it (tests, portable installs)."""

import os
from pathlib import Path

import platformdirs

APP_NAME = "LeanCoder"


def data_dir() -> Path:
    override = os.environ.get("LEANCODER_DATA_DIR")
    path = (
        Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def chats_db_path() -> Path:
    return data_dir() / "chats.sqlite3"


def settings_path() -> Path:
    return data_dir() / "settings.json"


def resources_dir() -> Path:
    """Bundled data files (`resources/` at the repository root, or beside the frozen app)."""
    return Path(__file__).resolve().parents[3] / "resources"
