"""Suites across every layer: trust, hostile input, fuzzing, processes, scale-out, the shipped model."""
