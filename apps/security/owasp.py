"""OWASP Top 10 (2021) categories for every kind of finding."""

from __future__ import annotations

A01 = "A01:2021-Broken Access Control"
A02 = "A02:2021-Cryptographic Failures"
A03 = "A03:2021-Injection"
A04 = "A04:2021-Insecure Design"
A05 = "A05:2021-Security Misconfiguration"
A06 = "A06:2021-Vulnerable and Outdated Components"
A07 = "A07:2021-Identification and Authentication Failures"
A08 = "A08:2021-Software and Data Integrity Failures"
A09 = "A09:2021-Security Logging and Monitoring Failures"
A10 = "A10:2021-Server-Side Request Forgery"

# bandit test id -> category (bandit 1.9's plugins and blacklists).
BANDIT = {
    "B101": A04, "B102": A03, "B103": A01, "B104": A05, "B105": A07, "B106": A07, "B107": A07, "B108": A01,
    "B110": A09, "B112": A09, "B113": A04, "B201": A05, "B202": A01,
    "B301": A08, "B302": A08, "B303": A02, "B304": A02, "B305": A02, "B306": A01, "B307": A03, "B308": A03,
    "B310": A10, "B311": A02, "B312": A02, "B313": A05, "B314": A05, "B315": A05, "B316": A05, "B317": A05,
    "B318": A05, "B319": A05, "B320": A05, "B321": A02, "B323": A02, "B324": A02,
    "B401": A02, "B402": A02, "B403": A08, "B404": A03, "B405": A05, "B406": A05, "B407": A05, "B408": A05,
    "B409": A05, "B410": A05, "B411": A05, "B412": A05, "B413": A02, "B415": A02,
    "B501": A02, "B502": A02, "B503": A02, "B504": A02, "B505": A02, "B506": A08, "B507": A07, "B508": A02, "B509": A02,
    "B601": A03, "B602": A03, "B603": A03, "B604": A03, "B605": A03, "B606": A03, "B607": A03, "B608": A03,
    "B609": A03, "B610": A03, "B611": A03, "B612": A05, "B613": A03, "B614": A08, "B615": A08,
    "B701": A03, "B702": A03, "B703": A03, "B704": A03,
}  # fmt: skip

# CWE -> category, for tests bandit adds later (from OWASP's 2021 CWE mapping).
CWE = {
    22: A01, 352: A01, 377: A01, 732: A01, 78: A03, 79: A03, 89: A03, 94: A03, 20: A03, 259: A07, 798: A07, 295: A07,
    327: A02, 328: A02, 330: A02, 319: A02, 326: A02, 502: A08, 611: A05, 605: A05, 489: A05, 703: A09, 918: A10, 400: A04,
}  # fmt: skip


def for_bandit(test_id: str, cwe: int | None) -> str:
    return BANDIT.get(test_id) or CWE.get(cwe or 0) or A04
