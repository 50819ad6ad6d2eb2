"""Training stages: domain adapter, SFT (optionally on top of it), DPO (padding-free, cached reference), shared code."""
