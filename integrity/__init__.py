"""Integrity Q&A: the knowledge base, matching, the gift decision helper and the gift register. No Flask, no LINE."""
