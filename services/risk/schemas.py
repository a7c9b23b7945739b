from __future__ import annotations

from pydantic import BaseModel


class VillageOut(BaseModel):
    code: str
    name: str
    township_code: str


class TownshipOut(BaseModel):
    code: str
    name: str
    villages: int
