"""Reliability suites: crash consistency and concurrency (see docs/reliability.md)."""
