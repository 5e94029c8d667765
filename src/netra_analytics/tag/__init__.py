"""The browser tag (netra-analytics.js), its GTM packaging and the demo page."""
