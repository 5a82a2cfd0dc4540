{{/* Names and labels. */}}
{{- define "af.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "af.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "af.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "af.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentfactory
{{- end -}}

{{- define "af.selectorLabels" -}}
app.kubernetes.io/name: {{ include "af.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: runtime
{{- end -}}

{{- define "af.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "af.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "af.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Seconds between SIGTERM-to-be and SIGKILL: preStop + drain + margin. */}}
{{- define "af.terminationGrace" -}}
{{- add .Values.runtime.preStopSleepSeconds .Values.runtime.drainSeconds 5 -}}
{{- end -}}

{{/* Cross-field checks the schema cannot express. */}}
{{- define "af.validate" -}}
{{- $active := index .Values.colors .Values.activeColor -}}
{{- if not $active.enabled -}}
{{- fail (printf "activeColor %s: colors.%s.enabled is false; the live Service would select no pod" .Values.activeColor .Values.activeColor) -}}
{{- end -}}
{{- if and (not .Values.source.registry) (not .Values.store.existingClaim) -}}
{{- fail "no agents to serve: set source.registry (oci://HOST/REPO) or store.existingClaim" -}}
{{- end -}}
{{- if and (not .Values.tokens.existingSecret) (not .Values.tokens.file) -}}
{{- fail "tokens.existingSecret (or tokens.file) is required: the runtime listens on the pod address only with bearer tokens" -}}
{{- end -}}
{{- if and (not .Values.keyring.existingSecret) (not .Values.keyring.file) -}}
{{- fail "keyring.existingSecret (or keyring.file) is required" -}}
{{- end -}}
{{- if .Values.colors.blue.enabled -}}{{- if .Values.colors.green.enabled -}}
{{- if eq .Values.colors.blue.channel .Values.colors.green.channel -}}
{{- fail "colors.blue.channel and colors.green.channel must differ" -}}
{{- end -}}
{{- end -}}{{- end -}}
{{- range $c := list "blue" "green" -}}
{{- $col := index $.Values.colors $c -}}
{{- $min := ternary $.Values.autoscaling.minReplicas $col.replicas $.Values.autoscaling.enabled -}}
{{- if and $col.enabled $.Values.podDisruptionBudget.enabled (ge (int $.Values.podDisruptionBudget.minAvailable) (int $min)) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the %s replicas (%d): a node drain could never evict a pod" (int $.Values.podDisruptionBudget.minAvailable) $c (int $min)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
