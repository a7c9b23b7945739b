"""Figures, their targets and anchors, and the one table (text or Markdown) every benchmark
prints. Pure: nothing here touches a server, so tests/unit/bench/test_report.py covers it."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

Op = Literal["<", "<=", ">", ">="]
_OPS: dict[Op, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
COLUMNS = ("benchmark", "figure", "value", "target", "met", "anchor", "ratio to anchor")
_RIGHT = {"value", "ratio to anchor"}


@dataclass(frozen=True)
class Target:
    """``value op threshold`` (or ``ratio op threshold`` with ``on_ratio``), stated as ``text``.

    ``applies`` is False when the run measured another size than the one the target is stated
    for (``--quick``, or ``--loans 100000`` against a target for a million): the target is
    shown but not judged, since scaling a time linearly would misstate fixed costs."""

    op: Op
    threshold: float
    text: str
    on_ratio: bool = False
    applies: bool = True

    def judge(self, value: float, ratio: float | None) -> bool | None:
        subject = ratio if self.on_ratio else value
        if not self.applies or subject is None:
            return None
        return _OPS[self.op](subject, self.threshold)

    def at_size(self, applies: bool) -> Target:
        return replace(self, applies=applies)


@dataclass(frozen=True)
class Figure:
    """One measured number. ``anchor_value`` is in the figure's own unit, so the ratio is
    ``value / anchor_value``: for a rate the share of the anchor's rate, for a duration how
    many times the anchor's duration."""

    name: str
    value: float | None
    unit: str = ""
    target: Target | None = None
    anchor: str | None = None
    anchor_value: float | None = None
    benchmark: str = ""
    error: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.value is None and self.error is None:
            raise ValueError(f"figure {self.name!r} has neither a value nor an error")

    @classmethod
    def failure(cls, benchmark: str, error: BaseException | str) -> Figure:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}".rstrip(": ")
        # One line of the table: the whole traceback has gone to stderr already.
        text = text.splitlines()[0] if text else "failed"
        if len(text) > 160:
            text = text[:159] + "…"
        return cls(name="failed", value=None, benchmark=benchmark, error=text)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.anchor_value:
            return None
        return self.value / self.anchor_value

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.target.judge(self.value, self.ratio)

    @property
    def status(self) -> str:
        if self.error is not None:
            return "ERROR"
        if self.target is None:
            return ""
        met = self.met
        return "n/a" if met is None else "yes" if met else "NO"


@dataclass(frozen=True)
class Machine:
    date: str
    host: str
    cpu: str
    cores: int | None
    load: str = ""
    versions: Sequence[tuple[str, str]] = ()

    def line(self) -> str:
        parts = [self.date, f"host {self.host}", self.cpu, f"{self.cores} cores (os.cpu_count())"]
        if self.load:
            parts.append(f"load average {self.load} at start")
        parts += [f"{name} {version}" for name, version in self.versions]
        return " · ".join(parts)


def number(x: float) -> str:
    """Three significant figures or so, with thousands separators: 12,345 · 678 · 59.1 · 0.231."""
    magnitude = abs(x)
    if magnitude >= 1000:
        return f"{x:,.0f}"
    if magnitude >= 100:
        return f"{x:.0f}"
    if magnitude >= 10:
        return f"{x:.1f}"
    if magnitude >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def quantity(x: float, unit: str) -> str:
    separator = "" if unit.startswith("/") else " "
    return f"{number(x)}{separator}{unit}".rstrip()


def ratio_text(r: float) -> str:
    if r >= 10:
        return f"{r:,.0f}×"
    if r >= 1:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


def cells(figure: Figure) -> tuple[str, ...]:
    if figure.error is not None:
        return (figure.benchmark, figure.name, "", "", figure.status, figure.error, "")
    assert figure.value is not None
    anchor = ""
    if figure.anchor is not None:
        anchor = figure.anchor
        if figure.anchor_value is not None:
            anchor += f" = {quantity(figure.anchor_value, figure.unit)}"
    ratio = figure.ratio
    return (
        figure.benchmark,
        figure.name,
        quantity(figure.value, figure.unit),
        figure.target.text if figure.target else "",
        figure.status,
        anchor,
        "" if ratio is None else ratio_text(ratio),
    )


def table(figures: Sequence[Figure]) -> str:
    rows = [COLUMNS, *(cells(f) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(row: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if column in _RIGHT else cell.ljust(width)
            for column, cell, width in zip(COLUMNS, row, widths, strict=True)
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown(
    figures: Sequence[Figure], machine: Machine, command: str, quick: bool, elapsed: float | None = None
) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    align = "|" + "|".join("---:" if c in _RIGHT else "---" for c in COLUMNS) + "|"
    body = ["| " + " | ".join(_md(c) for c in cells(f)) + " |" for f in figures]
    sizes = "**quick sizes**: a smoke test, not the issues' figures" if quick else "full sizes (the issues' targets)"
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Measured {machine.line()}.",
            "",
            f"Command: `{command}`, {sizes}" + (f"; {elapsed:,.0f} s in all." if elapsed is not None else "."),
            "",
            head,
            align,
            *body,
            "",
            "Ratio to anchor: value ÷ anchor value, in the figure's unit (for a rate, the share of the",
            "anchor's rate; for a duration, how many times the anchor's duration). Met `n/a`: the",
            "target is stated for another size than this run measured.",
            "",
        ]
    )


def failed(figures: Sequence[Figure]) -> bool:
    return any(f.error is not None for f in figures)
