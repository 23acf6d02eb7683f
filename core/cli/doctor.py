"""``quorum doctor``: what to look at first when something is off, one line a check.

The checks are in `core.doctor`; this prints them, ``ok``, ``warn`` or ``FAIL`` with a ``fix:``
line under each one that is not ok, or ``--json``. It runs before the config is loaded and the
data directory tightened (see ``core.cli.main``), so it reports both as they are; it repairs
nothing. Exit 0 when nothing is broken (warnings allowed), 1 when something is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from core.cli.exits import EXIT_BROKEN, EXIT_OK

if TYPE_CHECKING:
    from core.config import Settings
    from core.doctor.findings import Finding

COMMANDS = ("doctor",)


def add_parsers(sub: Any) -> None:
    doctor = sub.add(
        "doctor", help="check the installation, config, data directory, models and endpoints"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, settings: Settings) -> int:
    # `core.cli.main` calls run_doctor itself, before any config is loaded.
    return run_doctor(settings.path, as_json=args.json)


def run_doctor(
    explicit: str | os.PathLike[str] | None, *, as_json: bool, out: TextIO | None = None
) -> int:
    from core.doctor.checks import diagnose

    findings = diagnose(explicit)
    stream = out or sys.stdout
    if as_json:
        stream.write(json.dumps(to_json(findings), indent=2) + "\n")
    else:
        write_text(findings, stream)
    return EXIT_BROKEN if any(f.level == "FAIL" for f in findings) else EXIT_OK


def to_json(findings: Sequence[Finding]) -> dict[str, Any]:
    levels = [f.level for f in findings]
    return {
        "ok": "FAIL" not in levels,
        "failed": levels.count("FAIL"),
        "warnings": levels.count("warn"),
        "checks": [f.to_json() for f in findings],
    }


def write_text(findings: Sequence[Finding], out: TextIO) -> None:
    section = None
    for finding in findings:
        if finding.section != section:
            section = finding.section
            out.write(f"{section}\n")
        out.write(f"  {finding.level:<4}  {finding.detail}\n")
        if finding.fix:
            out.write(f"        fix: {finding.fix}\n")
    levels = [f.level for f in findings]
    broken, warned = levels.count("FAIL"), levels.count("warn")
    warnings = f"{warned} warning{'s' * (warned != 1)}"
    out.write(f"{f'{broken} broken' if broken else 'nothing broken'}, {warnings}\n")
