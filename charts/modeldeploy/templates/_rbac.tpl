{{/*
The operator's permissions, least privilege, one rule per reason.

"modeldeploy.rules.namespaced" is what the operator needs in every namespace it
serves: a ClusterRole in cluster-wide mode, a Role per namespace with
watchNamespaces. "modeldeploy.rules.discovery" is what kopf needs cluster-wide
in either mode. Nothing here lists Secrets, touches Pods, Nodes or RBAC objects,
and by default nothing reads a Secret outside the operator's own namespace
(see rbac-provider-secrets.yaml).
*/}}

{{- define "modeldeploy.rules.namespaced" -}}
# The ModelDeployments themselves: watch them, and patch metadata (the
# modeldeploy.io/cleanup finalizer). No create or delete: people and GitOps
# tools own them.
- apiGroups: [modeldeploy.io]
  resources: [modeldeployments]
  verbs: [get, list, watch, patch, update]
# Their status: the operator's memory (phase, revisions, history) and where
# people request promote/abort/retry/undo (status.action).
- apiGroups: [modeldeploy.io]
  resources: [modeldeployments/status]
  verbs: [get, patch, update]
# Children carry an ownerReference with blockOwnerDeletion=true, which the
# OwnerReferencesPermissionEnforcement admission plugin allows only to those
# who may update the owner's finalizers.
- apiGroups: [modeldeploy.io]
  resources: [modeldeployments/finalizers]
  verbs: [update]
# One Deployment per live revision, plus the fallback's.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
# Their ReplicaSets, read only: a revision's readiness from the ReplicaSet's
# status, seconds before the deployment controller copies it to the Deployment.
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch]
# With spec.autoscaling: one HorizontalPodAutoscaler per live revision (the
# operator writes only its bounds; the HPA controller scales the Deployment).
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, update, delete]
# The stable, candidate and fallback Services (also the `service` router).
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, update, delete]
# The `gatewayAPI` router: weights and request mirroring in an HTTPRoute.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, update, delete]
# The `istio` router: weights and mirroring in a VirtualService.
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, list, watch, create, patch, update, delete]
# Retraining Jobs from spec.monitoring.retrain: created by server-side apply
# (a PATCH, hence patch), never changed afterwards (no update).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
# Warm-up payloads and the fallback's static response.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
{{- if .Values.rbac.readSecrets }}
# Off by default. Only for inline providers (inlineProviders: true): the bearer
# token named by spec.analysis.prometheus.bearerTokenSecretRef, in the
# ModelDeployment's namespace. Get by name only; no list or watch. Admin-owned
# providers need none of this: their Secrets are in the operator's namespace.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
# Events on ModelDeployments (every transition, and kopf's handler reports).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- if and .Values.peering.enabled .Values.watchNamespaces }}
# kopf peering in namespaced mode: a KopfPeering in each served namespace.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}

{{- define "modeldeploy.rules.discovery" -}}
# kopf watches CustomResourceDefinitions to notice when the resources it
# serves (and the optional Gateway API / Istio kinds) appear or go.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- if .Values.watchNamespaces }}
# In namespaced mode kopf lists and watches Namespaces to learn when a served
# namespace appears or goes (in cluster-wide mode it never reads them).
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- else if .Values.peering.enabled }}
# kopf peering in cluster-wide mode: the ClusterKopfPeering the replicas share.
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}
