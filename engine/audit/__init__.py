"""The audit trail: what the manifests said over time (git), and what apply did about it (the journal).

Auditors ask two questions, answered here without any cloud call:
- `fleetctl history [ADDRESS]`: how did this resource's manifest change, in which commit, by whom? Every
  revision's manifests are read straight from git objects (`git ls-tree`, `git cat-file`), parsed with the
  manifest loader and keyed by resource address, so a renamed file or a resource moved to another file is the
  same resource; the field-level diff is between the resource's documents, not between file texts.
- `fleetctl journal [ADDRESS] [--request-id ID]`: which plan, commit and pull request changed this resource,
  when, and through which cloud requests. It reads the apply journal (DESIGN §1.4) and, where the journal has
  no pull-request number, finds it in git (a merge commit "Merge pull request #N" or a squash "(#N)").
"""

from __future__ import annotations

from engine.audit.commands import commands, history_command, journal_command
from engine.audit.git import Git, document_address

__all__ = ["Git", "commands", "document_address", "history_command", "journal_command"]
