"""simulator/cli.py: the flags a user types become a district, or a usage error."""

from __future__ import annotations

import argparse

import pytest

from simulator.cli import add_parser, options_from
from simulator.district import Options


def _flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["simulate", *argv])


def test_two_villages_get_two_townships_unless_told_otherwise() -> None:
    # `vcredit simulate --villages 2` raised a traceback: 5 townships (the default) > 2 villages.
    assert options_from(_flags("--villages", "2")).townships == 2
    assert options_from(_flags("--villages", "2", "--townships", "1")).townships == 1
    assert options_from(_flags()).townships == Options.townships


def test_an_impossible_district_is_a_usage_error_not_a_traceback() -> None:
    with pytest.raises(SystemExit, match=r"--townships \(3\) <= --villages \(2\)"):
        options_from(_flags("--villages", "2", "--townships", "3"))
