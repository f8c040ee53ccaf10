"""srg: replication suite for 'Safety Reasoning with Guidelines' (arXiv 2502.04040)."""

__version__ = "0.1.0"
