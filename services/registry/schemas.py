from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

# Administrative division codes (GB/T 2260 and the statistical codes below it) are digits;
# letters, '-' and '_' are allowed for pilots that number their own units.
Code = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_-]{1,32}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TownshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name


class TownshipOut(BaseModel):
    code: str
    name: str


class VillageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name
    township_code: Code


class VillageOut(BaseModel):
    code: str
    name: str
    township_code: str
