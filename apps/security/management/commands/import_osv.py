"""Load OSV advisories into the local set: `manage.py import_osv FILE_OR_DIR_OR_ZIP ...`.

Offline mirrors: download an ecosystem's export (e.g. PyPI/all.zip, npm/all.zip
from OSV's bucket) wherever the internet is reachable, copy it here, and import
it. With `--shipped`, the small set of real advisories in apps/security/advisories
is loaded (the demo and the tests use it). Records are replaced by id.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.security.deps import osv

SHIPPED = Path(__file__).resolve().parents[2] / "advisories"


class Command(BaseCommand):
    help = "Import OSV advisories from JSON files, directories or all.zip exports."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", help="OSV .json files, directories of them, or an ecosystem's all.zip.")
        parser.add_argument("--shipped", action="store_true", help="Also import the advisories shipped with the console.")

    def handle(self, *args, paths, shipped, **options):
        sources = [Path(p) for p in paths] + ([SHIPPED] if shipped else [])
        if not sources:
            raise CommandError("Give OSV files, directories or all.zip exports to import (or --shipped).")
        for source in sources:
            if not source.exists():
                raise CommandError(f"{source} does not exist.")
        total = osv.ImportStats()
        for source in sources:
            try:
                stats = osv.import_records(osv.read_records(source))
            except (ValueError, OSError) as exc:
                raise CommandError(f"{source}: {exc}") from None
            total.records += stats.records
            total.affected += stats.affected
            total.skipped += stats.skipped
            self.stdout.write(
                f"{source}: {stats.records} advisories, {stats.affected} affected packages ({stats.skipped} without packages skipped)"
            )
        self.stdout.write(self.style.SUCCESS(f"Imported {total.records} advisories."))
