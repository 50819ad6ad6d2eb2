"""Data: bundled clinical task builders, readers for user datasets, validation, and the shared collation layer."""
