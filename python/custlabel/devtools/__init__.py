"""Developer tools, not part of the nightly product: the embedded PostgreSQL and the benchmarks."""
