{{/* Names, labels and the small decisions every template shares. */}}

{{- define "modeldeploy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name. Cluster-scoped objects (ClusterRoles, bindings) are
named after it, so two releases with different names never clash.
*/}}
{{- define "modeldeploy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "modeldeploy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modeldeploy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modeldeploy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the chart's own objects. Note: app.kubernetes.io/managed-by is Helm
here; the operator labels what IT creates app.kubernetes.io/managed-by=modeldeploy.
*/}}
{{- define "modeldeploy.labels" -}}
helm.sh/chart: {{ include "modeldeploy.chart" . }}
{{ include "modeldeploy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: modeldeploy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "modeldeploy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modeldeploy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modeldeploy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "modeldeploy.peeringName" -}}
{{- default (include "modeldeploy.fullname" .) .Values.peering.name }}
{{- end }}

{{/* Checks across values that the schema cannot express. */}}
{{- define "modeldeploy.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.peering.enabled) }}
{{- fail "replicas > 1 needs peering.enabled=true: without kopf peering every replica would reconcile every ModelDeployment" }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.health.port) }}
{{- fail "metrics.port and health.port must differ" }}
{{- end }}
{{- end }}

{{/* The operator's config file (see operator/modeldeploy/providers.py). */}}
{{- define "modeldeploy.config" -}}
metricProviders:
{{- if .Values.metricProviders }}
{{ toYaml .Values.metricProviders }}
{{- else }} []
{{- end }}
inlineProviders: {{ .Values.inlineProviders }}
{{- with .Values.egress.allow }}
egress:
  allow:
{{ toYaml . | indent 2 }}
{{- end }}
{{- if .Values.notificationTargets }}
notificationTargets:
{{- range .Values.notificationTargets }}
- name: {{ .name }}
  urlsFile: /etc/modeldeploy/notifications/{{ .name }}
  {{- with (omit . "name" "urls") }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}
{{- with .Values.cloudEvents }}
cloudEvents:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .Values.registryProviders }}
registryProviders:
{{ toYaml . }}
{{- end }}
{{- with .Values.clusterName }}
clusterName: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Names of the Secrets the metric providers use, for the operator's Role in its namespace. */}}
{{- define "modeldeploy.providerSecrets" -}}
{{- $names := list -}}
{{- range concat .Values.metricProviders (.Values.registryProviders | default list) -}}
{{- with .bearerTokenSecretRef -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $names) -}}
{{- end }}
