"""Developer tools, not part of the nightly product: the benchmarks and the generated map of the package."""
