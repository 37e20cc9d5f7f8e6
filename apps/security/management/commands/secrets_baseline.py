"""Write a baseline of a directory's current secret findings:
`manage.py secrets_baseline DIR` creates DIR/.security-baseline.json; later
scans of that tree do not report those findings again."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.security import scanning
from apps.security.secretscan import baseline
from apps.security.sources import Tree


class Command(BaseCommand):
    help = "Record the secrets found in a directory as known (a baseline file at its top)."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--output", help="Where to write the baseline (default: DIRECTORY/.security-baseline.json).")

    def handle(self, *args, directory, output, **options):
        base = Path(directory).resolve()
        if not base.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        scanner = scanning.make_scanner()
        hits = []
        for obs in scanning.secrets_in_tree(Tree(base, "baseline"), scanner, scanning.Progress(lambda pct, msg: None)).observations:
            hits.append(baseline.SecretHit(obs.rule, obs.title, obs.severity, obs.path, obs.line or 0, "", obs.secret_hash, obs.example))
        target = Path(output) if output else base / baseline.FILENAME
        target.write_text(baseline.dump(hits))
        self.stdout.write(self.style.SUCCESS(f"{len(hits)} findings written to {target}."))
