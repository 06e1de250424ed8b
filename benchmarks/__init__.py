"""Benchmarks and test fixtures for attrib."""
