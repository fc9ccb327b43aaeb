"""`make bench`: convergence against a baseline, API cost, footprint, canary reaction, Prometheus load."""
