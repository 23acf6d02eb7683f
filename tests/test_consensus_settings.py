"""``[consensus]`` and ``[history] follow_up`` through the real config loader and CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.config import ConfigError, load_settings
from tests.conftest import ConfigWriter

MODELS = [
    {"name": "gpt", "provider": "openai", "model": "g", "api_key": "k"},
    {"name": "judge", "provider": "openai", "model": "j", "api_key": "k", "enabled": False},
]


def test_a_disabled_model_can_synthesize_and_fallbacks_keep_their_order(
    write_config: ConfigWriter,
) -> None:
    settings = load_settings(
        write_config(
            models=MODELS,
            consensus={"synthesizer": "judge", "fallback": ["gpt", "judge"]},
            history={"follow_up": "synthesis"},
        )
    )
    assert settings.consensus.candidates == ("judge", "gpt")
    assert [m.name for m in settings.enabled_models] == ["gpt"], "judge is not asked itself"
    assert settings.follow_up == "synthesis"


@pytest.mark.parametrize(
    ("tables", "words"),
    [
        ({"consensus": {"synthesizer": "jduge"}}, "'jduge' is not a configured model (did you"),
        ({"consensus": {"fallback": "gpt"}}, "fallback must be a list of model names"),
        ({"consensus": {"synthesiser": "gpt"}}, "did you mean 'synthesizer'"),
        ({"consensus": {"synthesis": "yes"}}, "synthesis must be true or false"),
        ({"consensus": {"prompt": "  "}}, "prompt must be a non-empty string"),
        ({"history": {"follow_up": "theirs"}}, 'follow_up must be "own" or "synthesis"'),
    ],
)
def test_bad_consensus_settings_are_clear_config_errors(
    write_config: ConfigWriter, tables: dict[str, object], words: str
) -> None:
    path = write_config(models=MODELS, **tables)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert words in str(caught.value)
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "models", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
