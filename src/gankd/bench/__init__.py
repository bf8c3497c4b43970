"""Benchmark harnesses: methods x targets x seeds under one protocol, with tables and pictures."""
