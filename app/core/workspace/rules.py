"""What a folder scan leaves out besides .gitignore: VCS data, heavy folders, binaries, secrets.

Each rule returns a reason in plain words (or None), because the user sees it next to the path:
a file that silently vanished from the tree would look like a bug.
"""

from __future__ import annotations

import fnmatch
import re

from app.core.workspace.text import unicode_bom_encoding

HEAD_BYTES = 8192  # how much of a file is read to tell text from binary (Git reads 8000)
DEFAULT_MAX_FILE_BYTES = 1024 * 1024

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj"})

# Folders that hold installed dependencies, build caches or tool state: many files, none of them
# the user's own code. Skipped even without a .gitignore (a fresh clone may not have one yet).
HEAVY_DIRS = frozenset(
    {
        "node_modules", "bower_components", "jspm_packages",
        ".venv", "venv", ".virtualenv", "__pycache__", ".mypy_cache", ".pytest_cache",
        ".ruff_cache", ".tox", ".nox", ".hypothesis", ".eggs", ".ipynb_checkpoints",
        ".gradle", ".m2", ".next", ".nuxt", ".svelte-kit", ".parcel-cache", ".turbo",
        ".terraform", ".serverless", ".idea", ".vs", ".cache", ".direnv", ".pixi",
    }
)  # fmt: skip

# File types that are binary by construction: skipped without opening them.
BINARY_SUFFIXES = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff",
        ".psd", ".heic", ".avif",
        ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar", ".war",
        ".whl", ".egg", ".apk", ".dmg", ".iso", ".deb", ".rpm",
        ".exe", ".dll", ".so", ".dylib", ".a", ".lib", ".o", ".obj", ".pyc", ".pyo", ".pyd",
        ".class", ".wasm", ".bin", ".dat", ".gguf", ".safetensors", ".pt", ".pth", ".onnx",
        ".ckpt", ".npy", ".npz", ".pkl", ".pickle", ".h5", ".parquet", ".feather",
        ".db", ".sqlite", ".sqlite3", ".mdb",
        ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods",
        ".mp3", ".mp4", ".m4a", ".wav", ".flac", ".ogg", ".avi", ".mov", ".mkv", ".webm",
        ".ttf", ".otf", ".woff", ".woff2", ".eot",
    }
)  # fmt: skip

# Secrets by file name: (glob on the name, what it is). Matched case-insensitively.
_SECRET_GLOBS: tuple[tuple[str, str], ...] = (
    (".env", "environment file with secrets (.env)"),
    (".env.*", "environment file with secrets (.env.*)"),
    ("*.env", "environment file with secrets (*.env)"),
    ("*.pem", "certificate or private key (*.pem)"),
    ("*.key", "private key (*.key)"),
    ("*.p12", "certificate bundle with a private key (*.p12)"),
    ("*.pfx", "certificate bundle with a private key (*.pfx)"),
    ("*.jks", "Java keystore (*.jks)"),
    ("*.keystore", "keystore (*.keystore)"),
    ("*.kdbx", "password database (*.kdbx)"),
    ("*.ppk", "PuTTY private key (*.ppk)"),
    ("*.gpg", "encrypted or signed data (*.gpg)"),
    ("*.asc", "PGP key or signature (*.asc)"),
    ("id_rsa", "SSH private key (id_rsa)"),
    ("id_dsa", "SSH private key (id_dsa)"),
    ("id_ecdsa", "SSH private key (id_ecdsa)"),
    ("id_ed25519", "SSH private key (id_ed25519)"),
    ("id_*_sk", "SSH security-key private key"),
    ("credentials.json", "credentials file (credentials.json)"),
    ("credentials", "credentials file (credentials)"),
    ("service-account*.json", "cloud service-account key"),
    ("client_secret*.json", "OAuth client secret"),
    ("secrets.yml", "secrets file (secrets.yml)"),
    ("secrets.yaml", "secrets file (secrets.yaml)"),
    ("secrets.json", "secrets file (secrets.json)"),
    (".netrc", "login file (.netrc)"),
    ("_netrc", "login file (_netrc)"),
    (".pgpass", "PostgreSQL password file (.pgpass)"),
    (".htpasswd", "password file (.htpasswd)"),
    (".git-credentials", "Git credentials (.git-credentials)"),
    (".dockercfg", "Docker registry credentials"),
    ("terraform.tfstate", "Terraform state (holds secrets)"),
    ("terraform.tfstate.backup", "Terraform state (holds secrets)"),
    ("*.tfvars", "Terraform variables (often secrets)"),
)
# One regex for the common case (no match), so 50,000 names cost one match each, not 34.
_ANY_SECRET = re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob, _ in _SECRET_GLOBS))
# Templates that document settings without values: safe, and useful to the model.
_SECRET_TEMPLATES = (".example", ".sample", ".template", ".dist", ".defaults")

# Package-manager configs are ordinary files unless they carry a token.
_TOKEN_CONFIGS = frozenset({".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc", ".gemrc"})
_TOKEN_LINE = re.compile(
    rb"(?im)^\s*[^#;\n]*(_authtoken|_auth|_password|password|npmauthtoken|token)\s*[=:]\s*\S"
)
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")


SENSITIVE_REASON_PREFIX = "looks like a secret: "  # every secret reason starts so


def dir_reason(name: str) -> str | None:
    """Why a folder with this name is not entered, or None to enter it."""
    if name in VCS_DIRS:
        return f"version-control data ({name}/)"
    if name in HEAVY_DIRS or name.endswith(".egg-info"):
        return f"dependency, cache or tool folder ({name}/)"
    return None


def secret_name_reason(name: str) -> str | None:
    """Why a file's name says it holds a secret, or None."""
    lower = name.lower()
    if not _ANY_SECRET.match(lower) or lower.endswith(_SECRET_TEMPLATES):
        return None
    for pattern, what in _SECRET_GLOBS:
        if fnmatch.fnmatchcase(lower, pattern):
            return f"looks like a secret: {what}"
    return None


def binary_suffix_reason(name: str) -> str | None:
    dot = name.rfind(".")
    if dot > 0 and name[dot:].lower() in BINARY_SUFFIXES:
        return f"binary file type ({name[dot:].lower()})"
    return None


def content_reason(name: str, head: bytes, include_secrets: bool) -> str | None:
    """Why a file is skipped judging by its first bytes, or None to include it."""
    if b"\x00" in head and unicode_bom_encoding(head) not in ("utf-16", "utf-32"):
        return "binary file (contains NUL bytes)"
    if include_secrets:
        return None
    if _PRIVATE_KEY.search(head):
        return "looks like a secret: contains a private key"
    if name.lower() in _TOKEN_CONFIGS and _TOKEN_LINE.search(head):
        return f"looks like a secret: {name} with an auth token or password"
    return None


