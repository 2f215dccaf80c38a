"""Report writers: report.html, the evidence bundle with its sha256 manifest, and a secret scan.

Pure functions over `ResultRow`s: no pytest, no network. The pytest plugin builds the rows with
`ResultRow.from_record` and calls the writers at the end of the session, the bundle last.
"""

from __future__ import annotations

from kubeproof.reports.evidence import evidence_filename, verify_manifest, write_evidence_bundle, write_manifest
from kubeproof.reports.html import render_html, write_html
from kubeproof.reports.model import (
    OUTCOMES,
    PROFILES,
    SEVERITY_WEIGHTS,
    EvidenceItem,
    ProfileScore,
    ResultRow,
    as_rows,
    count_outcomes,
    profile_score,
    summarize_by_section,
)
from kubeproof.reports.secrets import scan_for_secrets

__all__ = [
    "OUTCOMES",
    "PROFILES",
    "SEVERITY_WEIGHTS",
    "EvidenceItem",
    "ProfileScore",
    "ResultRow",
    "as_rows",
    "count_outcomes",
    "evidence_filename",
    "profile_score",
    "render_html",
    "scan_for_secrets",
    "summarize_by_section",
    "verify_manifest",
    "write_evidence_bundle",
    "write_html",
    "write_manifest",
]
