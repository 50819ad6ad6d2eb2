"""Tests for reading, converting, validating and PHI-scanning user datasets."""
