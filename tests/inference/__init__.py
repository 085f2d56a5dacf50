"""Backends, the batcher, engine builds."""
