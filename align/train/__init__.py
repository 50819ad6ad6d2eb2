"""Training stages: SFT, DPO (padding-free, cached reference), and what they share."""
