"""Reports: the JSON endpoints under /api/analytics/reports/."""
