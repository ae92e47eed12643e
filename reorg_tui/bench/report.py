"""What a measurement gives: figures, each with its unit; or BenchFailed, when there is none."""

from __future__ import annotations

from typing import NamedTuple

from reorg_tui.engine import ExitCode, ReorgError


class BenchFailed(ReorgError):
    """The measured side did not do its work (a file did not arrive): there is no figure to give."""

    exit_code = ExitCode.LEFT_BEHIND

    def __init__(self, why: str) -> None:
        super().__init__(f"bench: {why}")


class Figure(NamedTuple):
    name: str
    value: float
    unit: str = ""  # "s": a duration, shown to the millisecond; "": a number whose name says what

    def shown(self) -> str:
        if self.unit == "s":
            return f"{self.value:.3f} s"
        return f"{self.value:,.2f}" + (f" {self.unit}" if self.unit else "")

    def line(self) -> str:
        return f"{self.name:>18}: {self.shown()}"
