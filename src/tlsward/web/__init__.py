"""``tlsward serve``: dashboards, the JSON API (``/api/v1``) and ``/metrics`` from one FastAPI app."""
