"""align: SFT then DPO for clinical LLMs, with a report that says whether DPO beat SFT."""

__version__ = "0.1.0"
