"""Notifications and CloudEvents: what the planner's notices become, sent off the reconcile workers.

- :mod:`~modeldeploy.notify.message`: a notice as people read it (title and
  body naming model, versions, stage, metric, and the command to act) and as a
  CloudEvent's data;
- :mod:`~modeldeploy.notify.bucket`: the per-target token bucket;
- :mod:`~modeldeploy.notify.outbox`: the bounded queue and the sender thread
  that hands notices to Apprise (one client per admin target) and to the
  CloudEvents sink (through :mod:`modeldeploy.analysis.outbound`), counting
  every result in ``modeldeploy_notifications_total``.
"""
