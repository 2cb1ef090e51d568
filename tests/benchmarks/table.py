"""The result table: one row per measured figure, printed as text and as markdown."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass

COLUMNS = ("scenario", "bria-run", "baseline", "ratio", "floor", "efficiency", "notes")


@dataclass(frozen=True)
class Row:
    scenario: str
    value: float  # bria-run's figure, in ``unit``
    unit: str  # "s", "ms", "MB"
    baseline: float | None = None
    floor: float | None = None
    goal: str = ""  # what the issue asks, e.g. "< 0.5 s"
    met: bool | None = None
    notes: str = ""

    def cells(self) -> tuple[str, ...]:
        ratio = f"{self.baseline / self.value:.1f}x" if self.baseline and self.value else ""
        efficiency = f"{self.floor / self.value:.2f}" if self.floor and self.value else ""
        verdict = "" if self.met is None else ("met" if self.met else "MISSED")
        goal = f" [goal {self.goal}: {verdict}]" if self.goal else ""
        return (self.scenario, _fmt(self.value, self.unit), _fmt(self.baseline, self.unit),
                ratio, _fmt(self.floor, self.unit), efficiency, self.notes + goal)


@dataclass(frozen=True)
class Outcome:
    """What one scenario measured: its rows and lines that explain them."""

    rows: tuple[Row, ...]
    details: tuple[str, ...] = ()


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    digits = 3 if abs(value) < 1 else 2 if abs(value) < 100 else 0
    return f"{value:.{digits}f} {unit}"


def render_text(rows: list[Row]) -> str:
    cells = [COLUMNS, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in cells:
        fixed = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        lines.append(f"{fixed}  {row[-1]}")
    return "\n".join(lines)


def render_markdown(rows: list[Row]) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"

    return "\n".join([line(COLUMNS), line(tuple("---" for _ in COLUMNS)),
                      *(line(r.cells()) for r in rows)])


def machine() -> str:
    """nproc, CPU model, Python version, OS: where the figures were measured."""
    model = platform.processor() or "unknown CPU"
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5,
                              check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                      if ln.startswith("Model name")), model)
    except (OSError, subprocess.SubprocessError):
        pass
    return (f"{os.cpu_count()} CPU(s) ({model}), Python {sys.version.split()[0]}, "
            f"{platform.system()} {platform.release()}")
