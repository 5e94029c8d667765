"""Ingestion: the events endpoint, validation and enrichment, the spool and the batch writer."""
