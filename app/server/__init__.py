"""The local OpenAI-compatible API: LeanCoder's engine and thinking control served to
coding tools."""
