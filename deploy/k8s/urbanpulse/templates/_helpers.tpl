{{/* Names and labels shared by every resource of the chart. */}}
{{- define "urbanpulse.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "urbanpulse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "urbanpulse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "urbanpulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: urbanpulse
{{- end -}}

{{/* Selector labels of one component: include with (dict "root" $ "component" "ingest"). */}}
{{- define "urbanpulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "urbanpulse.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's resources: include with (dict "root" $ "component" "ingest"). */}}
{{- define "urbanpulse.componentLabels" -}}
{{ include "urbanpulse.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "urbanpulse.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "urbanpulse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "urbanpulse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "urbanpulse.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "urbanpulse.fullname" .)) -}}
{{- end -}}

{{/*
The pod spec shared by ingest, worker and API:
include with (dict "root" $ "component" "worker" "values" .Values.worker "args" (list "worker")
"env" (list ...extra EnvVar objects) "ports" (list ...) "metricsPort" 9102).
With metricsPort, the pods carry the prometheus.io/* annotations of annotation-based scraping.
*/}}
{{- define "urbanpulse.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .values -}}
metadata:
  labels:
    {{- include "urbanpulse.componentLabels" (dict "root" $root "component" .component) | nindent 4 }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- with .metricsPort }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ . | quote }}
    prometheus.io/path: /metrics
    {{- end }}
spec:
  serviceAccountName: {{ include "urbanpulse.serviceAccountName" $root }}
  automountServiceAccountToken: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  containers:
    - name: {{ .component }}
      image: {{ include "urbanpulse.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ include "urbanpulse.fullname" $root }}-config
      env:
        {{- /* Only this component's secrets (values: <component>.secretEnv). */}}
        {{- range $variable, $key := $v.secretEnv }}
        - name: {{ $variable }}
          valueFrom:
            secretKeyRef:
              name: {{ include "urbanpulse.secretName" $root }}
              key: {{ $key }}
        {{- end }}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- range $name, $value := $v.env }}
        - name: {{ $name }}
          value: {{ $value | quote }}
        {{- end }}
      {{- with .ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: state
          mountPath: /var/lib/urbanpulse
  volumes:
    - name: tmp
      emptyDir: {}
    - name: state
      emptyDir: {}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $v.affinity }}
  affinity:
    {{- toYaml $v.affinity | nindent 4 }}
  {{- else }}
  # Spread the replicas over nodes, so one node failure leaves the others running.
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "urbanpulse.selectorLabels" (dict "root" $root "component" .component) | nindent 10 }}
  {{- end }}
{{- end -}}
