"""`make demo`: real models, a real rollout, on a control plane started from nothing.

``python -m modeldeploy_dev.demo [--fast] [--keep]`` starts the local control
plane and Prometheus (all on 127.0.0.1), installs the CRD, trains three
scikit-learn models on a dataset that ships with scikit-learn, starts the
operator, and runs a local data plane that makes the rollout real:

- ``fleet``: one model server process per revision the operator creates
  (``server``), each exporting its own metrics to Prometheus;
- ``proxy``: follows the operator's HTTPRoute (weights and mirror), standing in
  for a gateway or mesh;
- ``load``: replays labelled held-out rows through the proxy.

Then ``scenario`` shows a better model promoted and a worse one rolled back by
the accuracy comparison, and ``view`` prints the live lines and the summary.
The process exits 0 only when both scenarios ended as expected.
"""
