"""LLM access: one async client for OpenAI-compatible endpoints, its cache and limits, the local server."""
