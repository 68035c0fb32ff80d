"""Real sample folders for the workspace tests: every case the scan must handle, on disk."""

from __future__ import annotations

import os
from pathlib import Path

BIG_FILE_BYTES = 1024 * 1024 + 512 * 1024  # 1.5 MiB: over the default 1 MiB limit

# What the scan of `make_sample_folder` must list, and what it must skip (path -> words in the
# reason). Written out by hand from the folder's contents and Git's rules, not from the scanner.
EXPECTED_FILES = {
    ".env.example",
    ".gitignore",
    ".npmrc",
    "keep.log",
    "latin1.py",
    "link_in.py",
    "main.py",
    "notes.txt",
    "src/.gitignore",
    "src/app.py",
    "src/important.tmp",
    "src/nested/.gitignore",
    "src/nested/debug.log",
    "src/nested/deep/util.js",
    "utf16.txt",
}
EXPECTED_SKIPPED = {
    ".git/": "version-control",
    ".env": "secret",
    "server.pem": "secret",
    "id_rsa": "secret",
    "deploy/key.txt": "private key",
    "deploy/.npmrc": "auth token",
    "build/": "ignored by .gitignore (pattern: build/)",
    "debug.log": "ignored by .gitignore (pattern: *.log)",
    "only_root.txt": "ignored by .gitignore (pattern: /only_root.txt)",
    "secret_notes.txt": "ignored by .git/info/exclude (pattern: secret_notes.txt)",
    "src/scratch.tmp": "ignored by src/.gitignore (pattern: *.tmp)",
    "src/debug.log": "ignored by .gitignore (pattern: *.log)",
    "node_modules/": "dependency, cache or tool folder",
    "env/": "Python virtual environment",
    "logo.png": "binary file type (.png)",
    "blob": "binary file (contains NUL bytes)",
    "big.txt": "larger than 1 MiB (1.5 MiB)",
    "link_out.txt": "symbolic link to outside the folder",
    "link_dir": "symbolic link to a folder",
    "broken_link": "broken symbolic link",
    "pipe": "not a regular file",
}


def make_sample_folder(base: Path) -> Path:
    """A small repository with one of everything; returns its root. `base/outside.txt` is the
    file outside it that a link points to."""
    root = base / "repo"
    base.mkdir(parents=True, exist_ok=True)
    (base / "outside.txt").write_text("outside the folder\n")
    files: dict[str, bytes] = {
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".git/info/exclude": b"# local excludes\nsecret_notes.txt\n",
        ".gitignore": b"build/\n!build/keep.js\n*.log\n!keep.log\n/only_root.txt\n",
        ".env": b"API_KEY=abc123\n",
        ".env.example": b"API_KEY=\n",
        ".npmrc": b"save-exact=true\n",
        "deploy/.npmrc": b"//registry.npmjs.org/:_authToken=npm_abcdef\n",
        "deploy/key.txt": b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n",
        "server.pem": b"-----BEGIN CERTIFICATE-----\n",
        "id_rsa": b"not really a key\n",
        "main.py": b"import os\n\n\ndef main():\n    return 0\n",
        "notes.txt": b"plain notes\n",
        "keep.log": b"kept by a negation\n",
        "debug.log": b"ignored\n",
        "only_root.txt": b"anchored pattern\n",
        "secret_notes.txt": b"excluded locally\n",
        "logo.png": b"\x89PNG\r\n\x1a\n",
        "blob": b"abc\x00def",
        "latin1.py": "# café\nNAME = 'crème'\n".encode("latin-1"),
        "utf16.txt": "hello ütf-16\n".encode("utf-16"),
        "build/out.js": b"built\n",
        "build/keep.js": b"cannot be re-included under an ignored folder\n",
        "node_modules/pkg/index.js": b"module.exports = 1\n",
        "env/pyvenv.cfg": b"home = /usr/bin\n",
        "env/lib/site.py": b"x = 1\n",
        "src/.gitignore": b"*.tmp\n!important.tmp\n",
        "src/app.py": b"class App:\n    def run(self):\n        pass\n",
        "src/scratch.tmp": b"scratch\n",
        "src/important.tmp": b"re-included\n",
        "src/debug.log": b"ignored by the root rule\n",
        "src/nested/.gitignore": b"!debug.log\n",
        "src/nested/debug.log": b"re-included by the deeper file\n",
        "src/nested/deep/util.js": b"export function util() { return 1 }\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "big.txt").write_bytes(b"x" * (BIG_FILE_BYTES - 1) + b"\n")
    os.symlink(base / "outside.txt", root / "link_out.txt")
    os.symlink(root / "main.py", root / "link_in.py")
    os.symlink(root / "src", root / "link_dir")
    os.symlink(root / "nowhere", root / "broken_link")
    os.mkfifo(root / "pipe")
    return root
