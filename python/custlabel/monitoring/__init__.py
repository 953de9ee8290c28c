"""Monitoring: the headline figures, alert rules, drift references and the nightly report."""
