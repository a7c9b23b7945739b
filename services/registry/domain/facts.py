"""Profile facts as canonical JSON values, and what a statement changes. Pure functions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.profile import Profile


def canonical(value: Any) -> str:
    """One spelling per value, so equal facts compare equal as text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def statement_of(profile: Profile) -> dict[str, Any]:
    """The fields a request or sheet row states (explicit nulls included: they retract)."""
    data = profile.model_dump(mode="json")
    return {field: data[field] for field in profile.model_fields_set}


def changes(current: Mapping[str, str], stated: Mapping[str, Any]) -> dict[str, Any]:
    """Fields whose stated value differs from the current fact (absent = not known = null)."""
    return {field: value for field, value in stated.items() if canonical(value) != current.get(field, "null")}


def profile_of(current: Mapping[str, str]) -> dict[str, Any]:
    """The known profile (nulls dropped), in JSON form, from current facts."""
    values = {field: json.loads(text) for field, text in current.items()}
    return {field: value for field, value in sorted(values.items()) if value is not None}
