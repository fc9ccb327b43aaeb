"""modeldeploy: a Kubernetes operator that carries machine-learning models into production safely."""
