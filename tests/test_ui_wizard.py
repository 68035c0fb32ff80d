"""The model chooser: this machine's ranking, download from a (loopback) hub, import, starter."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core.models.network import NetworkSettings, save_network_settings
from app.ui.model_wizard import BADGE_TEXT, ModelWizard
from tests.hub_server import FakeHub, sha256_of

pytest_plugins = ("tests.download_support",)


@pytest.fixture
def wizard(
    qtbot: QtBot, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelWizard]:
    # Downloads land in a private Hugging Face cache; the real one is not touched.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    dialog = ModelWizard(wanted_ctx=8192)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.ranked.topLevelItemCount() > 0, timeout=20_000)
    yield dialog
    dialog.done(0)


def test_the_ranking_explains_each_model_for_this_machine(wizard: ModelWizard) -> None:
    rows = wizard.ranked.topLevelItemCount()
    assert rows >= 11  # nine MoE models and the small dense ones
    first = wizard.ranked.topLevelItem(0)
    assert first is not None
    assert first.text(3) in (BADGE_TEXT["great"], BADGE_TEXT["good"])
    assert "tokens/s (estimate)" in first.text(5)
    assert wizard.selected_entry() is not None  # the best one is preselected
    assert wizard.download_button.isEnabled()
    texts = [wizard.ranked.topLevelItem(i).text(5) for i in range(rows)]  # type: ignore[union-attr]
    assert all(texts)
    # The context wish (8,192 tokens) reaches the plans: the best model gets all of it, and no
    # plan gets more; each fitting plan names the context it got.
    assert wizard.ctx_box.value() == 8192
    assert "with a 8,192-token context" in texts[0]
    plans = [r.plan for r in wizard.recommendations]
    assert plans[0].n_ctx == 8192 and all(p.n_ctx <= 8192 for p in plans)
    for plan, text in zip(plans, texts, strict=True):
        if plan.fits:
            assert f"with a {plan.n_ctx:,}-token context" in text


def test_download_from_the_hub_verifies_and_chooses_the_file(
    wizard: ModelWizard, qtbot: QtBot, fake_hub: FakeHub, starter_path: Path, no_token: None
) -> None:
    entry = next(
        r.entry for r in wizard.recommendations if r.entry.model_key == "granite-3.1-1b-a400m"
    )
    # The loopback hub serves the starter's bytes under this entry's repo and file name.
    fake_hub.add(entry.repo, entry.filename, starter_path, sha256=sha256_of(starter_path))
    save_network_settings(NetworkSettings(endpoint=fake_hub.endpoint))
    assert wizard.select_entry(entry.key)
    with qtbot.waitSignal(wizard.modelChosen, timeout=60_000) as chosen:
        wizard.download_button.click()
    path = Path(chosen.args[0])
    assert path.name == entry.filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256_of(starter_path)


def test_importing_a_file_that_is_not_gguf_says_why(wizard: ModelWizard, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("just text")
    wizard.import_file(bogus)
    assert "GGUF" in wizard.status.text()
    assert wizard.isVisible()


def test_importing_a_real_gguf_chooses_it(
    wizard: ModelWizard, qtbot: QtBot, starter_path: Path
) -> None:
    with qtbot.waitSignal(wizard.modelChosen) as chosen:
        wizard.import_file(starter_path)
    assert Path(chosen.args[0]) == starter_path


def test_the_starter_needs_no_network(wizard: ModelWizard, qtbot: QtBot) -> None:
    with qtbot.waitSignal(wizard.modelChosen) as chosen:
        wizard.starter_button.click()
    assert chosen.args == ["starter"]
