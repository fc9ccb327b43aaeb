"""Reconciliation: observe (caches) -> plan (pure) -> act (API), driven by a keyed work queue."""
