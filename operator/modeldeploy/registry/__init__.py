"""Model registries (MLflow): resolving versions and aliases, writing outcomes back."""
