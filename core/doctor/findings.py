"""One line of ``quorum doctor``: where, how bad, what was seen, what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.errors import redact
from core.sanitize import strip_control

Level = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True, slots=True)
class Finding:
    section: str  # install, config, data, models, store
    level: Level
    detail: str
    fix: str = ""  # what to do: every warn and FAIL has one

    def cleaned(self, secrets: Sequence[str]) -> Finding:
        """Control sequences stripped and every known key value redacted (belt and braces)."""

        def clean(text: str) -> str:
            for secret in secrets:
                text = redact(text, secret)
            return strip_control(text)

        return Finding(self.section, self.level, clean(self.detail), clean(self.fix))

    def to_json(self) -> dict[str, str]:
        return {
            "section": self.section,
            "state": self.level.lower(),
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(section: str, detail: str) -> Finding:
    return Finding(section, "ok", detail)


def warn(section: str, detail: str, fix: str) -> Finding:
    return Finding(section, "warn", detail, fix)


def fail(section: str, detail: str, fix: str) -> Finding:
    return Finding(section, "FAIL", detail, fix)
