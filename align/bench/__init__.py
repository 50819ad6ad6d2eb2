"""Benchmark: align's stages against TRL's defaults (tokens/s, pairs/s, padding, peak RSS, MFU)."""
