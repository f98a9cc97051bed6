"""SCIM as gotosync speaks it, shared by the mapping, the engine and the GoTo client: schema
URNs (``schemas``), attribute paths read from and written into resources (``paths``), resources
and generic request bodies (``resource``), ``eq`` filters (``filters``) and GoTo's documented
limits (``limits``).

The bottom layer of ``shared``: it imports nothing from the rest of gotosync (a test holds it
to that), so every other package may import it.
"""
