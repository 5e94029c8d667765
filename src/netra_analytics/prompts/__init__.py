"""Prompt privacy and intelligence: sanitising, normalising and hashing prompts."""
