"""Making and checking models: training, synthetic data, evaluation, calibration, Triton export."""
