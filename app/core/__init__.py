"""All of LeanCoder's logic. Imports no Qt (an import-linter contract enforces it)."""
