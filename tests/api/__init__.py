"""The HTTP API through the real app."""
