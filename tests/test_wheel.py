"""An install from the wheel, not from the checkout.

The wheel is built offline (hatchling, no build isolation) and installed, not editable, into a
fresh venv in a temporary directory; the development venv's site-packages is reachable from it
only through a ``.pth`` line, so the heavy dependencies are neither downloaded nor reinstalled
while Quorum's own files all come from the wheel. Everything then runs from outside the
checkout, with a home of its own and the Hugging Face hub offline: the version, the bundled
config and themes in use, ``quorum doctor``, and the default local council answering.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from core.themes import load_theme_dirs

REPO = Path(__file__).resolve().parent.parent
BIN = "Scripts" if os.name == "nt" else "bin"
PIP_WHEEL = [
    sys.executable,
    "-m",
    "pip",
    "wheel",
    "--no-deps",
    "--no-build-isolation",
    "--no-index",
]
pytestmark = pytest.mark.local_model  # the last test asks the bundled SmolLM2 council


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site: Path  # the new venv's site-packages, where the wheel's files went
    home: Path  # HOME and working directory: outside the checkout
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(args),
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def quorum(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.venv / BIN / "quorum"), *args, timeout=timeout)

    def python(self, code: str) -> Any:
        done = self.run(str(self.venv / BIN / "python"), "-c", code)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def build_wheel(out: Path) -> Path:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip(
            "cannot build the wheel offline: hatchling (the build backend) is not installed in "
            "this venv; pip install -e '.[test]' brings it"
        )
    done = subprocess.run(
        [*PIP_WHEEL, "--quiet", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("quorum_tui-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root / "dist")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / BIN / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=120,
    )
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([python, "-c", purelib], text=True).strip())
    # Only now (pip would otherwise see the checkout's editable install as already there):
    # the dependencies, from the development venv, after the new venv's own packages.
    (site / "zz_quorum_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = root / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUORUM_", "XDG_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        HF_HUB_OFFLINE="1",
        PATH=os.pathsep.join([str(venv / BIN), env.get("PATH", "")]),
    )
    return Installed(wheel, venv, site, home, env)


def test_the_wheel_carries_the_config_and_themes_and_no_tests(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    themes = sorted(p.name for p in (REPO / "themes").glob("*.toml"))
    assert "core/bundled/config.toml" in names
    assert themes and {f"core/bundled/themes/{t}" for t in themes} <= names
    assert {"core/cli/__init__.py", "tui/app.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "bench/", ".venv/"))]


def test_version_is_the_package_version(installed: Installed) -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert metadata.version("quorum-tui") == declared

    done = installed.quorum("--version")

    assert (done.returncode, done.stdout) == (0, f"quorum {declared}\n")


def test_the_installed_files_config_and_themes_are_the_ones_in_use(installed: Installed) -> None:
    seen = installed.python(
        "import json, core, tui\n"
        "from core import paths\n"
        "from core.themes import load_theme_dirs\n"
        "themes, problems = load_theme_dirs([paths.bundled_themes_dir()])\n"
        "print(json.dumps({'core': core.__file__, 'tui': tui.__file__,\n"
        "    'config': str(paths.resolve_config_path()),\n"
        "    'themes': sorted(t.name for t in themes), 'problems': problems}))"
    )
    core_dir = installed.site / "core"
    assert seen["core"] == str(core_dir / "__init__.py")
    assert seen["tui"] == str(installed.site / "tui" / "__init__.py")
    config = core_dir / "bundled" / "config.toml"
    assert seen["config"] == str(config)
    assert config.read_bytes() == (REPO / "config.toml").read_bytes()
    expected, _ = load_theme_dirs([REPO / "themes"])
    assert seen["themes"] == sorted(t.name for t in expected) and seen["problems"] == []

    listed = installed.quorum("models", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["config"] == str(config)

    doctor = installed.quorum("doctor", "--json")
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0 and report["failed"] == 0, doctor.stdout
    details = [c["detail"] for c in report["checks"]]
    assert f"quorum-tui {metadata.version('quorum-tui')} (installed in {core_dir})" in details
    assert any(d.startswith(f"{config} (the bundled default") for d in details), details
    assert f"{len(expected)} themes" in " ".join(details)
    # nothing of the checkout is in use, only the dependencies its venv lends
    assert str(REPO) not in doctor.stdout.replace(sysconfig.get_paths()["purelib"], "<deps>")


def test_the_default_council_answers_from_outside_the_checkout(installed: Installed) -> None:
    done = installed.quorum("ask", "What is the capital of France?", "--json", timeout=180)

    assert done.returncode == 0, done.stderr
    responses = json.loads(done.stdout)["responses"]
    assert len(responses) == 3 and {r["provider"] for r in responses} == {"local"}
    assert all(r["ok"] and r["text"].strip() for r in responses), responses
    assert any("Paris" in r["text"] for r in responses), [r["text"] for r in responses]
    # the question went to the user's own data directory, under their home
    assert (installed.home / ".local" / "share" / "quorum" / "history.sqlite3").is_file()
