"""The demo world: a company's master data generated from hidden customer traits, its truth, and its simulation."""
