"""A remote inference server (llama-server, vLLM, Ollama, LeanCoder) as an engine, with
thinking control over the wire."""
