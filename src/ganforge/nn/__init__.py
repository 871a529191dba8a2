"""Shared building blocks for the model families (normalization factories, initialisation, layers)."""
