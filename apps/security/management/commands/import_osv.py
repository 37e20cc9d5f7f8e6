"""Load OSV advisories into the local set: `manage.py import_osv FILE_OR_DIR_OR_ZIP ...`.

With `--shipped` (bin/console runs it after migrate), the snapshot shipped in
apps/security/advisories is loaded for each ecosystem that has no newer data
(a second run does nothing). Offline mirrors: download an ecosystem's export
(e.g. PyPI/all.zip from OSV's bucket) where the internet is reachable, copy it
here and import it. Records are replaced by id.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.security.deps import feeds, osv


class Command(BaseCommand):
    help = "Import OSV advisories from JSON files, directories or all.zip exports (--shipped: the snapshot shipped with the console)."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", help="OSV .json files, directories of them, or an ecosystem's all.zip.")
        parser.add_argument("--shipped", action="store_true", help="Load the shipped snapshot where no newer data is loaded.")

    def handle(self, *args, paths, shipped, **options):
        sources = [Path(p) for p in paths]
        if not sources and not shipped:
            raise CommandError("Give OSV files, directories or all.zip exports to import (or --shipped).")
        for source in sources:
            if not source.exists():
                raise CommandError(f"{source} does not exist.")
        if shipped:
            loaded = feeds.load_shipped(timezone.now())
            for ecosystem, count in loaded.items():
                self.stdout.write(f"{ecosystem}: {count} advisories from the shipped snapshot")
            if not loaded:
                self.stdout.write("The shipped advisories are loaded already (or newer data is).")
        for source in sources:
            try:
                stats = osv.import_records(osv.read_records(source))
            except (ValueError, OSError) as exc:
                raise CommandError(f"{source}: {exc}") from None
            self.stdout.write(
                f"{source}: {stats.records} advisories, {stats.affected} affected packages ({stats.skipped} without packages skipped)"
            )
