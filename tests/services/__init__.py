"""Async jobs and webhooks."""
