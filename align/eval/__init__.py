"""Generation-based evaluation: answer parsing, metric math, per-task scoring and paired statistics."""
