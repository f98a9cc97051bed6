"""Local stand-ins for Microsoft Graph and GoTo, faithful to docs/reference (demo and tests)."""
