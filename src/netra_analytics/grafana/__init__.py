"""Grafana for this service: generated provisioning files (`generate`), their offline check
(`check`) and their upload to a running Grafana (`push`)."""
