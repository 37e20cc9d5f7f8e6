"""Offline verification of the ops console's audit evidence, with no Django import:
stdlib + `cryptography` only, so an auditor runs it on any machine.

    python -m opsconsole_audit_verify bundle.zip --key console-audit.pub.pem [--chain-key-file key]

`chain` is also the console's own definition of an event's canonical form and link
(apps/audit/chain.py imports it), so the two can never drift apart."""
