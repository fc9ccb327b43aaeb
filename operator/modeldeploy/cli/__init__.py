"""The `modeldeploy` command line, which is also the `kubectl modeldeploy` plugin."""
