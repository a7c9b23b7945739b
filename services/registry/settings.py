"""Registry's own settings, ``VCREDIT_REGISTRY_*`` (the common ones: shared/settings.py).

| variable | default | meaning |
|---|---|---|
| VCREDIT_REGISTRY_DATABASE_URL | sqlite under data dir | e.g. postgresql+asyncpg://u:p@host/vcredit_registry |
| VCREDIT_REGISTRY_PORT | 8001 | HTTP port |
| VCREDIT_REGISTRY_SCORING_URL | http://127.0.0.1:$VCREDIT_SCORING_PORT | scoring's API, for a subject's query log |
| VCREDIT_REGISTRY_LOANS_URL | http://127.0.0.1:$VCREDIT_LOANS_PORT | loans' API, for a subject's query log |
| VCREDIT_REGISTRY_PEER_TIMEOUT_SECONDS | 3 | one call to scoring or loans for the query log, connect to last byte |
| VCREDIT_REGISTRY_IMPORT_MAX_ROWS | 30000 | rows of an imported sheet, blank ones too (413 SHEET_TOO_LARGE past it) |
| VCREDIT_REGISTRY_IMPORT_MAX_UNZIPPED_BYTES | 67108864 | an XLSX sheet decompressed, all entries (413 past it) |
| VCREDIT_REGISTRY_IMPORT_MAX_ZIP_ENTRIES | 1000 | entries in an XLSX sheet's zip archive (413 past it) |
| VCREDIT_REGISTRY_IMPORT_REPORT_MAX_ERRORS | 1000 | row errors an import report lists (answered, stored); all counted |
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.registry.domain.sheet_limits import SheetLimits
from shared.settings import DEFAULT_PORTS, ServiceSettings, service_port


class RegistrySettings(ServiceSettings):
    service = "registry"
    model_config = SettingsConfigDict(env_prefix="VCREDIT_REGISTRY_", extra="ignore")
    port: int = DEFAULT_PORTS["registry"]
    # A subject's query log (征信业管理条例 §17) gathers scoring's and loans' rows from these;
    # unset: on this host at their configured ports (what `vcredit up` runs).
    scoring_url: str | None = None
    loans_url: str | None = None
    peer_timeout_seconds: float = Field(default=3.0, gt=0)

    # What one collection sheet may make the service do (issue 21: 141 KB of XLSX held a million
    # empty rows, 48 MB of XML, and took 30 s). Issue 3 sizes a village's sheet at 20,000
    # households (bench/registry_import.py imports that many in one file); 30,000 rows leaves
    # half as much again for title, header and blank rows. Past it a file is not one village's.
    import_max_rows: int = Field(default=30_000, ge=1)
    # 20,000 households with all 26 columns filled, as openpyxl writes them (inline strings,
    # the largest form; Excel's shared strings take less), measured at 29 MB of XML; 64 MiB
    # leaves room for long member lists. The stated sizes are checked before anything is
    # parsed, and the bytes actually decompressed are counted as they are read.
    import_max_unzipped_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # Excel writes about a dozen entries, one or two more per sheet, picture or comment; the
    # zip's directory is read whole before anything else, so it is bounded too.
    import_max_zip_entries: int = Field(default=1_000, ge=1)
    # A sheet of 100,000 bad rows stored a 17 MB report (issue 21). A collector fixes a sheet
    # from the top and re-imports it; the first 1,000 errors in full, with every error counted
    # by field, say what is wrong with the rest.
    import_report_max_errors: int = Field(default=1_000, ge=0)

    def sheet_limits(self) -> SheetLimits:
        return SheetLimits(
            max_rows=self.import_max_rows,
            max_unzipped_bytes=self.import_max_unzipped_bytes,
            max_zip_entries=self.import_max_zip_entries,
        )

    def peer_url(self, service: Literal["scoring", "loans"]) -> str:
        url = self.scoring_url if service == "scoring" else self.loans_url
        if url:
            return url
        # The peer's port as the peer resolves it, without importing another service's code.
        return f"http://127.0.0.1:{service_port(service)}"
