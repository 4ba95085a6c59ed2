"""Tiers: the ladder, qualification, upgrades, reviews and progress."""
