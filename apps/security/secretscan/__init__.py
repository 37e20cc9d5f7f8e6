"""Secret detection: provider rules, generic assignments and entropy, run with
keyword prefilters over streamed windows of each file."""
