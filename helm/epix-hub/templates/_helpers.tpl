{{/* The release's full name, at most 63 characters. */}}
{{- define "epix-hub.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "epix-hub.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "epix-hub.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "epix-hub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "epix-hub.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "epix-hub.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Environment of the hub: settings as values, every secret as a file under /run/secrets/epix.
*/}}
{{- define "epix-hub.env" -}}
- name: EPIX_HTTP_BIND
  value: "0.0.0.0:{{ .Values.service.port }}"
- name: EPIX_PUBLIC_HUB_URL
  value: {{ .Values.hub.publicHubUrl | quote }}
- name: EPIX_PUBLIC_AMQP_URL
  value: {{ .Values.hub.publicAmqpUrl | quote }}
- name: EPIX_BROKER_MANAGEMENT_URL
  value: {{ .Values.hub.brokerManagementUrl | quote }}
- name: EPIX_BROKER_MANAGEMENT_USER
  value: {{ .Values.hub.brokerManagementUser | quote }}
- name: EPIX_PARTY_USER_PREFIX
  value: {{ .Values.hub.partyUserPrefix | quote }}
- name: EPIX_WORKERS
  value: {{ .Values.hub.workers | quote }}
- name: EPIX_BATCH_SIZE
  value: {{ .Values.hub.batchSize | quote }}
- name: EPIX_REQUIRE_SIGNATURES
  value: {{ .Values.hub.requireSignatures | quote }}
- name: EPIX_TOKEN_TTL_SECONDS
  value: {{ .Values.hub.tokenTtlSeconds | quote }}
- name: EPIX_LOG_FORMAT
  value: {{ .Values.hub.logFormat | quote }}
- name: RUST_LOG
  value: {{ .Values.hub.logFilter | quote }}
{{- if .Values.auditArchive.enabled }}
- name: EPIX_AUDIT_ARCHIVE_DIR
  value: /var/lib/epix/audit-archive
{{- end }}
{{- $keys := .Values.secrets.keys }}
{{- range $name, $variable := dict "databaseUrl" "DATABASE_URL" "migrationDatabaseUrl" "EPIX_MIGRATION_DATABASE_URL" "retentionDatabaseUrl" "EPIX_RETENTION_DATABASE_URL" "amqpUrl" "AMQP_URL" "brokerManagementPassword" "EPIX_BROKER_MANAGEMENT_PASSWORD" "jwtSigningKey" "EPIX_JWT_SIGNING_KEY" "jwtAdditionalKeys" "EPIX_JWT_ADDITIONAL_KEYS" }}
{{- if index $keys $name }}
- name: {{ $variable }}_FILE
  value: /run/secrets/epix/{{ index $keys $name }}
{{- end }}
{{- end }}
{{- with .Values.hub.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "epix-hub.secretVolume" -}}
- name: secrets
  secret:
    secretName: {{ required "secrets.existingSecret is required: a Secret with the hub's URLs and keys" .Values.secrets.existingSecret }}
    defaultMode: 0400
{{- end -}}
