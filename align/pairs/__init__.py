"""On-policy preference pairs: sample the SFT model, score its answers with the task metric, keep (best, worst)."""
