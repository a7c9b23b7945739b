"""The benchmark table: targets judged, ratios to anchors, text and Markdown layout, failures
as error rows with a non-zero exit, and `vcredit bench` as python -m bench. No server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import bench.__main__ as suite_main
from bench.report import Figure, Machine, Target, markdown, number, ratio_text, table
from bench.suite import Benchmark, Servers, run
from vcredit.cli import main as vcredit

COB = Target("<", 300, "< 300 s for 1,000,000 loans, one day")
HALF = Target(">=", 0.5, ">= 50% of raw", on_ratio=True)
MACHINE = Machine(
    date="2026-03-01 09:00 CST",
    host="bench-1",
    cpu="Example CPU @ 2.0GHz",
    cores=2,
    load="0.10",
    versions=(("Python", "3.11.7"), ("PostgreSQL", "15.14")),
)


def test_targets_judge_the_value_or_the_ratio_and_only_at_their_size() -> None:
    assert COB.judge(299.9, None) is True
    assert COB.judge(300.0, None) is False
    assert Target("<=", 300, "").judge(300.0, None) is True
    assert Target(">", 5_000, "").judge(5_000.0, None) is False
    assert HALF.judge(1_000.0, 0.5) is True
    assert HALF.judge(1_000_000.0, 0.49) is False
    assert HALF.judge(1_000.0, None) is None
    assert COB.at_size(False).judge(1.0, None) is None
    assert COB.at_size(False).text == COB.text


def test_ratio_is_value_over_anchor_and_met_follows_the_target() -> None:
    bus = Figure("end to end", 12_000, "events/s", HALF, "raw aiokafka", 30_000)
    assert bus.ratio == pytest.approx(0.4)
    assert (bus.met, bus.status) == (False, "NO")

    cob = Figure("close of business", 120, "s", COB, "bare UPDATE", 8)
    assert cob.ratio == pytest.approx(15)
    assert (cob.met, cob.status) == (True, "yes")

    quick = Figure("close of business", 12, "s", COB.at_size(False), "bare UPDATE", 0.5)
    assert (quick.met, quick.status) == (None, "n/a")

    bare = Figure("first rating", 3.5, "s")
    assert (bare.ratio, bare.met, bare.status) == (None, None, "")
    assert Figure("x", 3.5, "s", anchor="zero", anchor_value=0).ratio is None


def test_a_figure_needs_a_value_or_an_error() -> None:
    with pytest.raises(ValueError, match="neither"):
        Figure("nothing", None)
    failure = Figure.failure("cob", RuntimeError("database gone"))
    assert (failure.benchmark, failure.error, failure.status, failure.met) == (
        "cob",
        "RuntimeError: database gone",
        "ERROR",
        None,
    )
    assert Figure.failure("risk", TimeoutError()).error == "TimeoutError"
    # One line in the table; the traceback went to stderr.
    long = Figure.failure("api", ValueError("first line\n" + "x" * 500))
    assert long.error == "ValueError: first line"
    assert len(Figure.failure("api", "y" * 500).error or "") == 160


@pytest.mark.parametrize(
    ("x", "text"),
    [(12_345.6, "12,346"), (678.4, "678"), (59.14, "59.1"), (1.234, "1.23"), (0.2314, "0.231"), (0.0, "0")],
)
def test_numbers_keep_about_three_significant_figures(x: float, text: str) -> None:
    assert number(x) == text


@pytest.mark.parametrize(("r", "text"), [(0.456, "0.46×"), (3.14, "3.1×"), (42.4, "42×"), (1234.0, "1,234×")])
def test_ratios(r: float, text: str) -> None:
    assert ratio_text(r) == text


FIGURES = [
    Figure("end to end", 12_000, "events/s", HALF, "raw", 30_000, benchmark="bus"),
    Figure("close of business", 120.04, "s", COB.at_size(False), "bare UPDATE", 8, benchmark="cob"),
    Figure.failure("risk", "RuntimeError: no | freeze"),
]


def test_text_table_aligns_columns() -> None:
    # Values and ratios right-aligned, the rest left-aligned; trailing blanks stripped.
    assert table(FIGURES).splitlines() == [
        "benchmark  figure                       value  target                                met    "
        "anchor                     ratio to anchor",
        "---------  -----------------  ---------------  ------------------------------------  -----  "
        "-------------------------  ---------------",
        "bus        end to end         12,000 events/s  >= 50% of raw                         NO     "
        "raw = 30,000 events/s                0.40×",
        "cob        close of business            120 s  < 300 s for 1,000,000 loans, one day  n/a    "
        "bare UPDATE = 8.00 s                   15×",
        "risk       failed                                                                    ERROR  "
        "RuntimeError: no | freeze",
    ]


def test_markdown_has_machine_command_and_escaped_cells() -> None:
    text = markdown(FIGURES, MACHINE, "python -m bench", quick=False, elapsed=3_723)
    lines = text.splitlines()
    assert lines[0] == "# Benchmark results"
    assert (
        "Measured 2026-03-01 09:00 CST · host bench-1 · Example CPU @ 2.0GHz · 2 cores (os.cpu_count()) · "
        "load average 0.10 at start · Python 3.11.7 · PostgreSQL 15.14." in lines
    )
    assert "Command: `python -m bench`, full sizes (the issues' targets); 3,723 s in all." in lines
    assert "| benchmark | figure | value | target | met | anchor | ratio to anchor |" in lines
    assert "|---|---|---:|---|---|---|---:|" in lines
    assert "| bus | end to end | 12,000 events/s | >= 50% of raw | NO | raw = 30,000 events/s | 0.40× |" in lines
    assert "| risk | failed |  |  | ERROR | RuntimeError: no \\| freeze |  |" in lines
    assert "quick sizes" in markdown(FIGURES, MACHINE, "python -m bench --quick", quick=True)


@dataclass(frozen=True)
class Sizes:
    n: int


async def _good(servers: Servers, sizes: Sizes) -> list[Figure]:
    return [Figure(f"{sizes.n} things", 2.0 * sizes.n, "/s", Target(">=", 10, ">= 10/s"), "bare", 4.0 * sizes.n)]


async def _broken(servers: Servers, sizes: Sizes) -> list[Figure]:
    raise RuntimeError("broker down")


async def _empty(servers: Servers, sizes: Sizes) -> list[Figure]:
    return []


GOOD = Benchmark("good", full=Sizes(100), quick=Sizes(3), measure=_good)
SERVERS = Servers("postgresql+asyncpg://nobody@127.0.0.1:1/none", "127.0.0.1:1")


def test_sizes_full_quick_and_overrides() -> None:
    assert GOOD.sizes(False) == Sizes(100)
    assert GOOD.sizes(True) == Sizes(3)
    assert GOOD.sizes(True, n=7) == Sizes(7)
    assert GOOD.sizes(False, n=None) == Sizes(100)


def test_run_names_the_benchmark_and_turns_failures_into_rows() -> None:
    [figure] = run(GOOD, SERVERS, Sizes(3))
    assert (figure.benchmark, figure.name, figure.value, figure.ratio, figure.met) == (
        "good",
        "3 things",
        6,
        0.5,
        False,
    )
    [failure] = run(Benchmark("broken", Sizes(1), Sizes(1), _broken), SERVERS, Sizes(1))
    assert (failure.benchmark, failure.error) == ("broken", "RuntimeError: broker down")
    [nothing] = run(Benchmark("empty", Sizes(1), Sizes(1), _empty), SERVERS, Sizes(1))
    assert nothing.error == "measured nothing"


@pytest.fixture
def fake_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = {"good": GOOD, "broken": Benchmark("broken", Sizes(1), Sizes(1), _broken)}

    def load(name: str) -> Benchmark[Sizes]:
        if name not in registry:
            raise ModuleNotFoundError(f"No module named 'bench.{name}'")
        return registry[name]

    monkeypatch.setattr(suite_main, "BENCHMARKS", ["good", "broken", "district"])
    monkeypatch.setattr(suite_main, "load", load)
    monkeypatch.setattr(suite_main, "machine", lambda servers: MACHINE)
    # The real one sets the root logger to WARNING for the rest of the test session.
    monkeypatch.setattr(suite_main, "quiet_logging", lambda: None)


@pytest.mark.usefixtures("fake_suite")
def test_suite_keeps_going_after_a_failure_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "RESULTS.md"
    assert suite_main.main(["--quick", "--write", str(out)]) == 1
    rows = [
        line.split()[:2]
        for line in capsys.readouterr().out.splitlines()
        if line.split()[:1] in (["good"], ["broken"], ["district"])
    ]
    assert rows == [["good", "3"], ["broken", "failed"], ["district", "failed"]]
    written = out.read_text()
    assert "Command: `python -m bench --quick`, **quick sizes**" in written
    assert "| broken | failed |  |  | ERROR | RuntimeError: broker down |  |" in written
    assert "| district | failed |  |  | ERROR | ModuleNotFoundError: No module named 'bench.district' |  |" in written


@pytest.mark.usefixtures("fake_suite")
def test_only_selects_and_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert suite_main.main(["--quick", "--only", "good"]) == 0
    assert "good       3 things  6.00/s  >= 10/s  NO   bare = 12.0/s" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:
        suite_main.main(["--only", "good,nope"])
    assert exit.value.code == 2
    assert "unknown benchmark(s) nope" in capsys.readouterr().err


@pytest.mark.usefixtures("fake_suite")
def test_vcredit_bench_is_python_m_bench(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        vcredit(["bench", "--quick", "--only", "good"])
    assert exit.value.code == 0
    assert "3 things" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:
        vcredit(["bench", "--only", "broken"])
    assert exit.value.code == 1
