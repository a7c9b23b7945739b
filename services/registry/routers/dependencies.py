"""What several registry routes take from the request: the headers a statement of facts
carries (its source role and evidence), the provenance made of them, and the app's PII
cipher."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Header, Request

from services.registry.domain.provenance import choose_source
from services.registry.subjects import Provenance
from shared.auth import Principal
from shared.pii import PiiCipher, load_cipher
from shared.problems import Problem

FactSource = Annotated[
    str | None, Header(alias="X-Fact-Source", description="role the facts are stated as, if you hold several")
]
EvidenceRef = Annotated[
    str | None,
    Header(
        alias="X-Evidence-Ref",
        max_length=600,
        description="reference of the supporting document, percent-encoded UTF-8 (headers are ASCII): "
        "(2026)豫0102执123号 is sent as %282026%29%E8%B1%AB0102%E6%89%A7123%E5%8F%B7",
    ),
]


def cipher(request: Request) -> PiiCipher:
    existing: PiiCipher | None = getattr(request.app.state, "pii_cipher", None)
    if existing is None:
        existing = load_cipher(request.app.state.runtime.common)
        request.app.state.pii_cipher = existing
    return existing


def provenance(principal: Principal, source: str | None, evidence: str | None) -> Provenance:
    try:
        role = choose_source(principal.roles, source)
    except ValueError as exc:
        raise Problem(403 if source else 422, "FACT_SOURCE", "Fact source", str(exc), field="X-Fact-Source") from None
    reference = unquote(evidence) if evidence else None
    if reference is not None and len(reference) > 200:
        raise Problem(
            422, "VALIDATION_FAILED", "Evidence reference too long", "At most 200 characters.", field="X-Evidence-Ref"
        )
    return Provenance(role, principal.name, reference)
