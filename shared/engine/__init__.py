"""The per-object pipeline (import, scope, match, evaluate, export) and the sync cycles."""
