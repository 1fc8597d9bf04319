{{/* The board folders under files/dashboards (city, lab, operations), as a JSON list. */}}
{{- define "urbanpulse.grafanaFolders" -}}
{{- $folders := dict -}}
{{- range $path, $_ := .Files.Glob "files/dashboards/*/*.json" -}}
{{- $_ := set $folders (base (dir $path)) true -}}
{{- end -}}
{{- keys $folders | sortAlpha | toJson -}}
{{- end -}}

{{- define "urbanpulse.grafanaAdminSecret" -}}
{{- .Values.grafana.admin.existingSecret | default (printf "%s-grafana-admin" (include "urbanpulse.fullname" .)) -}}
{{- end -}}
