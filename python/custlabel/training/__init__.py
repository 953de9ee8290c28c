"""Training: training data by time, model families and the search, evaluation, calibration, the rule baseline, BG/NBD, the feature list, the deployable model shape."""
