"""python -m opsconsole_audit_verify bundle.zip --key pub.pem [--chain-key-file FILE]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .bundle import Rejected, verify
from .chain import key_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsconsole_audit_verify", description="Verify a signed audit export bundle offline.")
    parser.add_argument("bundle")
    parser.add_argument("--key", required=True, help="the console's public key (PEM): manage.py audit_public_key, /audit/public-key.pem")
    parser.add_argument(
        "--chain-key-file", help="the chain key ring (one key a line, oldest first, as the console has it), to recompute every link too"
    )
    args = parser.parse_args(argv)
    public_key = load_pem_public_key(Path(args.key).read_bytes())
    if not isinstance(public_key, Ed25519PublicKey):
        parser.error(f"{args.key} is not an Ed25519 public key")
    chain_keys = None
    if args.chain_key_file:
        lines = [line.strip().encode() for line in Path(args.chain_key_file).read_text().splitlines() if line.strip()]
        chain_keys = {key_id(k): k for k in lines}
    try:
        report = verify(args.bundle, public_key, chain_keys)
    except Rejected as exc:
        print(f"REJECTED: {exc}")
        return 1
    links = "every link recomputed with the chain key" if report.links_checked else "links between events checked (no chain key given)"
    print(f"OK: {report.count} events #{report.first_seq}–#{report.last_seq}, manifest signature valid, {links}; {report.anchor}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
