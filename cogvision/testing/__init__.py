"""Test and demo helpers that run real servers on loopback (no network, no downloads)."""
