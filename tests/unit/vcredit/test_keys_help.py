"""`vcredit keys --help` tells a newcomer which roles exist and what each may do (issue 22
item 7c): every role of shared/auth.py, one line each."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from shared.auth import ROLE_SUMMARIES, ROLES
from vcredit.cli import build_parser


def _keys_help() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["keys", "--help"])
    assert exited.value.code == 0
    return out.getvalue()


def test_keys_help_lists_every_role_with_what_it_may_do() -> None:
    text = _keys_help()
    listed = {
        m[1]: m[2] for line in text.splitlines() if (m := re.fullmatch(r"  ([a-z]+) +(\S.*)", line)) and m[1] in ROLES
    }
    assert list(listed) == list(ROLES), text
    for role, line in listed.items():
        assert line == ROLE_SUMMARIES[role], role
        assert len(line) > 20, f"{role}: say what it may do"


def test_every_role_has_exactly_one_summary() -> None:
    assert set(ROLE_SUMMARIES) == set(ROLES)
