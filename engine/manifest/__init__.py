"""Manifest boundary: YAML loading with positions, pydantic kinds, references. Nothing here talks to a cloud."""
