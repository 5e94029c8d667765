"""Grafana provisioning generated from the panel catalog (`generate.build()`), the plugin's
macro expansion (`macros`) and validation against Grafana's dashboard JSON schema (`schema`)."""
