"""Privacy by default: keyed IP hashing, redaction of free text."""
