"""Scenarios and their results: what the live runner runs and reports.

A scenario has a stable id, a level (MUST or SHOULD, as in RFC 2119) and the section of
``spec/protocol.md`` that states the rule it checks. Its function raises
:class:`~worker_process.conformance._raw.Fail` with a one-line reason when the candidate
breaks the rule.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["SECTIONS", "Level", "Result", "Scenario", "ScenarioSet", "Status"]

#: The sections of spec/protocol.md that scenarios cite.
SECTIONS = ("Transport", "Handshake", "Frames", "Limits", "End of stream", "Worker lifecycle",
            "Parent lifecycle")


class Level(enum.Enum):
    MUST = "MUST"
    SHOULD = "SHOULD"


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    TIMEOUT = "timeout"  #: the scenario ran past its timeout
    ERROR = "error"  #: the runner itself failed (a bug in the kit, or the machine)
    SKIPPED = "skipped"  #: not run: the candidate failed the pre-flight scenario


Ctx = TypeVar("Ctx")


@dataclass(frozen=True)
class Scenario(Generic[Ctx]):
    """One check, run against a fresh candidate process."""

    id: str
    level: Level
    section: str
    summary: str
    run: Callable[[Ctx], None]
    #: Seconds the scenario may take (scaled by ``--timeout-scale``).
    timeout: float = 10.0


@dataclass
class Result:
    """The outcome of one scenario."""

    id: str
    level: Level
    section: str
    summary: str
    status: Status
    reason: str
    seconds: float
    #: What the candidate wrote on stderr, when the pre-flight scenario failed.
    stderr: str = ""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def to_json(self) -> dict[str, Any]:
        extra = {"stderr": self.stderr} if self.stderr else {}
        return {
            "id": self.id,
            "level": self.level.value,
            "section": self.section,
            "summary": self.summary,
            "status": self.status.value,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            **extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(
            id=data["id"],
            level=Level(data["level"]),
            section=data["section"],
            summary=data["summary"],
            status=Status(data["status"]),
            reason=data["reason"],
            seconds=float(data["seconds"]),
            stderr=data.get("stderr", ""),
        )


class ScenarioSet(Generic[Ctx]):
    """An ordered registry of scenarios for one role. The first one registered is the
    pre-flight: it always runs first, and when it fails the others are skipped."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.scenarios: list[Scenario[Ctx]] = []

    def add(
        self, id: str, level: Level, section: str, summary: str, *, timeout: float = 10.0
    ) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
        """Decorator registering a scenario function."""
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}")

        def register(func: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
            if any(s.id == id for s in self.scenarios):
                raise ValueError(f"duplicate scenario id {id!r}")
            self.scenarios.append(Scenario(id, level, section, summary, func, timeout))
            return func

        return register

    def select(self, only: list[str] | None) -> list[Scenario[Ctx]]:
        """The scenarios whose ids are in ``only`` (all when None), in order.

        Raises:
            ValueError: an id in ``only`` is unknown.
        """
        if not only:
            return list(self.scenarios)
        known = {s.id for s in self.scenarios}
        unknown = [i for i in only if i not in known]
        if unknown:
            raise ValueError(f"unknown {self.role} scenario(s): {', '.join(unknown)}")
        return [s for s in self.scenarios if s.id in only]
