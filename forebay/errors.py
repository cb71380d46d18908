"""Error types shared across the package.

Every error a user can cause names where it happened and what to do about it: a spec
problem names the file, the place inside it and the problem; a config problem names the
setting.
"""

from __future__ import annotations

from dataclasses import dataclass


class ForebayError(Exception):
    """Base class for errors Forebay reports to a user rather than crashing on."""


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One problem found in an API spec or collection: where it is and what it is."""

    file: str
    place: str
    problem: str

    def __str__(self) -> str:
        place = f" at {self.place}" if self.place else ""
        return f"{self.file}{place}: {self.problem}"


class SpecError(ForebayError):
    """A spec or collection that cannot be imported at all."""

    def __init__(self, file: str, place: str, problem: str) -> None:
        self.detail = SpecProblem(file, place, problem)
        super().__init__(str(self.detail))


class ConfigError(ForebayError):
    """Settings that fail validation; the message names each bad setting."""
