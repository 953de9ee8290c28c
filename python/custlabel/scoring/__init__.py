"""Scoring: tonight's labels from the deployed model, in Python or in the warehouse, with reasons, written back safely."""
