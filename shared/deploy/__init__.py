"""Deployment helpers run by an admin from a workstation (not by the Function app)."""
