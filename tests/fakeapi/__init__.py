"""Fake arXiv and GitHub APIs: real HTTP servers on 127.0.0.1 for the tests and benchmarks."""
