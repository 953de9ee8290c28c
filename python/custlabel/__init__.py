"""custlabel: nightly good/bad customer labels from master data in Postgres."""
