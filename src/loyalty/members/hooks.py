"""Registers the members domain's own member-data handlers."""

from __future__ import annotations
