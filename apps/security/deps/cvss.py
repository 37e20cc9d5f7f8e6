"""Severity of an OSV record: the scores of its CVSS vectors, computed by the
`cvss` library (RedHat's, the reference implementation of v2, v3.0/3.1 and
v4.0 scoring), else the database's own rating, else "unknown" (never a guess)."""

from __future__ import annotations

from cvss import CVSS2, CVSS3, CVSS4, CVSSError

# The newest scoring system a record carries wins: v4 rates what v3 over- or under-scores.
SCORERS = {"CVSS_V4": (CVSS4, 0), "CVSS_V3": (CVSS3, 1), "CVSS_V2": (CVSS2, 2)}
DB_SEVERITY = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}


def base_score(kind: str, vector: str) -> float | None:
    """The base score of an OSV severity entry (`CVSS_V2`, `CVSS_V3`, `CVSS_V4`), or None if it is not a valid vector."""
    scorer = SCORERS.get(kind)
    if scorer is None or not vector:
        return None
    try:
        cvss = scorer[0](vector)
        return float(cvss.base_score if kind == "CVSS_V4" else cvss.scores()[0])
    except (CVSSError, ValueError, KeyError, IndexError):
        return None


def rating(score: float | None) -> str:
    """The qualitative rating of a score (the same bands in v3 and v4; v2 scores are banded alike)."""
    if score is None:
        return ""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else "info"


def severity_of(record: dict) -> tuple[str, str, float | None]:
    """(rating, the vector it came from, its base score) of an OSV record."""
    scored = []
    entries = record.get("severity") or [e for aff in record.get("affected") or [] for e in aff.get("severity") or []]
    for entry in entries:
        kind, vector = entry.get("type", ""), entry.get("score", "")
        score = base_score(kind, vector)
        if score is not None:
            scored.append((SCORERS[kind][1], vector, score))
    if scored:
        _, vector, score = min(scored)
        return rating(score), vector, score
    own = str((record.get("database_specific") or {}).get("severity", "")).upper()
    return DB_SEVERITY.get(own, "unknown"), "", None
