"""Complaints of corruption and misconduct: categories, receipt codes, evidence checks, the
case rules officers work by, statistics and retention. No Flask, no LINE: the LINE flow is
``handlers/complaints.py`` and the officers' pages are ``bot/console/complaints.py``."""
