"""`make demo`: real models, a real rollout, on a cluster started from nothing, on the real path.

``python -m modeldeploy_dev.demo [--fast] [--keep]`` starts the local cluster
with its real node (kubelet, containerd, kube-proxy) and the real node's
gateway (Traefik's Gateway API provider, as a pod there), installs the CRD,
starts the operator, and then:

- the ModelDeployment's revisions run as MLServer pods on the real node (the
  model server image, its three scikit-learn models trained at build time);
- the operator's HTTPRoute is served by the gateway: weighted backends for the
  canary, a RequestMirror filter for the shadow;
- ``load`` replays labelled held-out rows through the gateway's ClusterIP;
- ``servers`` reads each model pod's MLServer metrics (answers, failures,
  right answers on labelled requests) and points Prometheus at the pods.

Then ``scenario`` shows a better model promoted and a worse one rolled back by
the accuracy comparison, and ``view`` prints the live lines and the summary:
answers per version as the servers counted them, the split they counted at
each canary step, and the requests that failed. The process exits 0 only when
both scenarios ended as expected.
"""
