"""Theme files: the bundled set, user themes, and bad files reported but never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import paths
from core.config import load_settings
from core.themes import ThemeError, load_theme_dirs, parse_theme
from tests.conftest import ConfigWriter
from tui.app import QuorumApp


def test_bundled_themes_include_light_and_dark() -> None:
    themes, problems = load_theme_dirs([paths.bundled_themes_dir()])
    assert problems == []
    assert len(themes) >= 4
    assert {t.dark for t in themes} == {True, False}
    assert all("primary" in t.colors and "background" in t.colors for t in themes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dark": True, "primary": "#112233"}, "'name'"),
        ({"name": "x", "primary": "blue-ish"}, "primary must be a colour"),
        ({"name": "x"}, "missing required colour 'primary'"),
        ({"name": "x", "primary": "#123", "dark": "yes"}, "'dark' must be true or false"),
        ({"name": "x", "primary": "#123", "primray": "#123"}, "unknown key 'primray'"),
    ],
)
def test_bad_theme_data_is_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(ThemeError, match=message):
        parse_theme(data)


def test_user_theme_overrides_and_bad_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "quorum-dark"\nprimary = "#ff0000"\n')
    (tmp_path / "broken.toml").write_text("name = [unterminated\n")
    themes, problems = load_theme_dirs([paths.bundled_themes_dir(), tmp_path])
    by_name = {t.name: t for t in themes}
    assert by_name["quorum-dark"].colors["primary"] == "#ff0000"
    assert len(problems) == 1 and "broken.toml" in problems[0] and "invalid TOML" in problems[0]


@pytest.mark.anyio
async def test_app_reports_a_malformed_user_theme_and_still_starts(
    write_config: ConfigWriter,
) -> None:
    user_dir = paths.user_themes_dir()
    user_dir.mkdir(parents=True)
    (user_dir / "oops.toml").write_text('name = "oops"\nprimary = "not a colour"\n')
    (user_dir / "sunset.toml").write_text('name = "sunset"\ndark = false\nprimary = "#ff7f50"\n')
    app = QuorumApp(load_settings(write_config(models=[], ui={"theme": "sunset"})))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "sunset"
        assert "oops" not in app.available_themes
        messages = [str(n.message) for n in app._notifications]
        assert any("oops.toml" in m and "primary must be a colour" in m for m in messages)
