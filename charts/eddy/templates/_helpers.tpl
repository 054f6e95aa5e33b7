{{/* Names, labels and the rendered pipeline file. */}}

{{- define "eddy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eddy.fullname" -}}
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

{{- define "eddy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eddy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eddy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eddy.labels" -}}
helm.sh/chart: {{ include "eddy.chart" . }}
{{ include "eddy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eddy
{{- end }}

{{- define "eddy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eddy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "eddy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where mounted credentials live in the pod. */}}
{{- define "eddy.secretsDir" -}}/etc/eddy/secrets{{- end }}

{{/*
The pipeline's kafka.security section, built from .Values.kafka.security with file paths of
the mounted Secrets; empty when no protocol is set.
*/}}
{{- define "eddy.security" -}}
{{- $s := .Values.kafka.security }}
{{- $dir := include "eddy.secretsDir" . }}
{{- if $s.protocol }}
protocol: {{ $s.protocol }}
{{- if hasPrefix "SASL_" $s.protocol }}
{{- if not $s.sasl.username }}{{ fail "kafka.security.sasl.username is required with a SASL protocol" }}{{ end }}
{{- if not $s.sasl.passwordSecret.name }}{{ fail "kafka.security.sasl.passwordSecret.name is required with a SASL protocol" }}{{ end }}
sasl:
  mechanism: {{ $s.sasl.mechanism }}
  username: {{ $s.sasl.username | quote }}
  password_file: {{ $dir }}/sasl/password
{{- end }}
{{- if hasSuffix "SSL" $s.protocol }}
{{- $t := $s.tls }}
tls:
  verify_hostname: {{ $t.verifyHostname }}
  {{- if $t.caSecret.name }}
  ca_file: {{ $dir }}/tls-ca/ca.crt
  {{- end }}
  {{- if $t.clientCertSecret.name }}
  cert_file: {{ $dir }}/tls-client/tls.crt
  key_file: {{ $dir }}/tls-client/tls.key
  {{- end }}
  {{- if $t.keyPasswordSecret.name }}
  key_password_file: {{ $dir }}/tls-key-password/password
  {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pipeline's `app`, the consumer group id. */}}
{{- define "eddy.app" -}}
{{- regexFind "(?m)^app:.*$" .Values.pipeline | trimPrefix "app:" | trim | trimAll "\"'" }}
{{- end }}

{{/* The `kafka:` section rendered from .Values.kafka. */}}
{{- define "eddy.kafka" -}}
{{- $k := .Values.kafka }}
{{- $kafka := dict "bootstrap_servers" $k.bootstrapServers "transaction_timeout" $k.transactionTimeout "static_membership" $k.staticMembership }}
{{- with $k.properties }}
{{- $_ := set $kafka "properties" . }}
{{- end }}
{{- $security := include "eddy.security" . | fromYaml }}
{{- if $security }}
{{- $_ := set $kafka "security" $security }}
{{- end }}
{{- toYaml (dict "kafka" $kafka) }}
{{- end }}

{{/* The whole pipeline file: the rendered `kafka:` section, then .Values.pipeline verbatim. */}}
{{- define "eddy.pipeline" -}}
{{- if regexMatch "(?m)^kafka:" .Values.pipeline }}
{{- fail "pipeline: leave out the kafka: section; the chart renders it from .Values.kafka" }}
{{- end }}
{{- if not (include "eddy.app" .) }}
{{- fail "pipeline: needs a top-level `app:` (the consumer group id)" }}
{{- end }}
{{- include "eddy.kafka" . }}
{{ .Values.pipeline }}
{{- end }}
