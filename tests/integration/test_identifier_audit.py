"""``vcredit registry check-identifiers`` (issue 19, defect 4): rows stored before the one
normalisation, in the spellings the old check let through, are reported, never rewritten."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from services.registry.identifier_audit import audit_identifiers
from services.registry.models import Business, Household, Person
from shared.pii import load_cipher
from tests.conftest import Infra
from tests.support.system import System

TOWNSHIP, VILLAGE = "410102001", "410102001001"
ID = "11010519491231002X"
ID_FULL_WIDTH_DIGITS = "１１０１０５１９４９１２３１００２X"  # what the old check let through
ID_ARABIC_INDIC = "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X"
OTHER = "410102198001010018"  # a clean row


async def test_rows_stored_as_typed_are_reported_and_left_alone(infra: Infra) -> None:
    async with System(infra, ["registry"]) as system:
        client = system["registry"]
        assert (await client.post("/v1/townships", json={"code": TOWNSHIP, "name": "城关镇"})).status_code == 201
        r = await client.post("/v1/villages", json={"code": VILLAGE, "name": "东村", "township_code": TOWNSHIP})
        assert r.status_code == 201
        r = await client.post("/v1/households", json={"id_number": ID, "name": "张三", "village_code": VILLAGE})
        clean = (
            await client.post("/v1/households", json={"id_number": OTHER, "name": "李四", "village_code": VILLAGE})
        ).json()
        first = r.json()["household_id"]
        business = {
            "credit_code": "91350100M000100Y43",
            "name": "合作社",
            "kind": "cooperative",
            "village_code": VILLAGE,
        }
        assert (await client.post("/v1/businesses", json=business)).status_code == 201

        # What the registry stored before the fix: the same person twice, as typed.
        cipher = load_cipher(system.runtimes["registry"].common)
        sessions = system.runtimes["registry"].sessions
        now = datetime.now(UTC)
        legacy = {}
        async with sessions() as session, session.begin():
            for number in (ID_FULL_WIDTH_DIGITS, ID_ARABIC_INDIC):
                household_id = legacy[number] = str(uuid.uuid4())
                session.add(
                    Household(
                        id=household_id,
                        village_code=VILLAGE,
                        township_code=TOWNSHIP,
                        head_name="张三",
                        poor_household=False,
                        created_at=now,
                        version=1,
                    )
                )
                await session.flush()
                session.add(
                    Person(
                        id_hash=cipher.lookup_hash(number),
                        household_id=household_id,
                        is_head=True,
                        name="张三",
                        relation="户主",
                        id_masked="110***********002X",
                        id_encrypted=cipher.encrypt(number),
                    )
                )
            session.add(
                Business(
                    id=str(uuid.uuid4()),
                    credit_code="９１３５０１００Ｍ０００１００Ｙ４３",
                    name="合作社",
                    kind="cooperative",
                    village_code=VILLAGE,
                    township_code=TOWNSHIP,
                    created_at=now,
                    version=1,
                )
            )
        async with sessions() as session:
            before = sorted((p.id_hash, p.id_encrypted) for p in await session.scalars(select(Person)))

        findings = await audit_identifiers(sessions, cipher)
        text = "\n".join(map(str, findings))
        by_subject: dict[str, list[str]] = {}
        for f in findings:
            by_subject.setdefault(f.subject, []).append(f.problem)

        assert clean["household_id"] not in by_subject, text
        full_width = by_subject[legacy[ID_FULL_WIDTH_DIGITS]]
        assert any(p.startswith("not in normal form") for p in full_width), text
        assert "lookup hash is not of the normal form" in full_width, text
        assert any(p.startswith("2 rows hold the ID number 110***********002X") for p in full_width), text
        assert any(p.startswith("2 rows hold the ID number") for p in by_subject[first]), text
        assert any("cannot be normalised" in p and "U+0661" in p for p in by_subject[legacy[ID_ARABIC_INDIC]]), text
        assert sum("2 rows hold the credit code 91350100M000100Y43" in f.problem for f in findings) == 2, text
        # Never a whole ID number on the operator's screen.
        assert ID not in text and "1949123100" not in text and "<U+FF11>" in text

        async with sessions() as session:
            assert sorted((p.id_hash, p.id_encrypted) for p in await session.scalars(select(Person))) == before
