"""Evaluation: FID, KID, precision/recall, intra-cluster LPIPS and data-copying (docs/metrics.md)."""
