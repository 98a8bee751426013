"""Providers: one subpackage per cloud (and the device provider). Only a provider's client module imports its SDK."""
