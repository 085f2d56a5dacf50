"""Training, synthetic data, evaluation."""
