"""Dependency advisories: lockfile parsers, version ordering and the local OSV set."""
