"""The nightly run: its steps in order, its record in pipeline_runs, and how Prefect runs and serves it."""
