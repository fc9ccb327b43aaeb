"""I/O with the Kubernetes API: reading children, server-side apply, status patches, Events."""
