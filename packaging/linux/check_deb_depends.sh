#!/usr/bin/env bash
# Check that a bundle's package declares every system package its files link to.
#
#   check_deb_depends.sh BUNDLE_DIR "pkg-a (>= 1), pkg-b | pkg-c, ..."
#
# Every ELF file in BUNDLE_DIR is resolved with ldd the way the bundle runs (its own _internal/
# first); each library found outside the bundle is mapped to its Debian package with dpkg-query,
# and that package must be among the declared ones. A library not found on the build machine
# fails the check (it is then not in the bundle either), except Wayland's (optional). Skipped,
# with a note, where dpkg-query is missing (a non-Debian build machine).
set -euo pipefail
BUNDLE="$(cd "$1" && pwd)"
DECLARED="$2"
if ! command -v dpkg-query >/dev/null || ! command -v ldd >/dev/null; then
    echo "note: dpkg-query or ldd missing: the package's dependencies were not checked"
    exit 0
fi
declared_names="$(echo "$DECLARED" | tr ',|' '\n' | sed 's/(.*)//; s/^ *//; s/ *$//' | sort -u)"

resolved="$(mktemp)"
trap 'rm -f "$resolved"' EXIT
while IFS= read -r -d '' file; do
    [ "$(head -c 4 "$file" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    LD_LIBRARY_PATH="$BUNDLE/_internal" ldd "$file" 2>/dev/null | awk '/=>/ { print $1, $3 }' || true
done < <(find "$BUNDLE" -type f -print0) | sort -u > "$resolved"

# The package owning a library path, whichever spelling dpkg recorded (/lib or /usr/lib, the
# link or the file it points to).
owner() {
    local real candidate found
    real="$(readlink -f "$1")"
    for candidate in "$1" "$real" "${1#/usr}" "${real#/usr}" "/usr$1" "/usr${real#/usr}"; do
        found="$(dpkg-query -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1 || true)"
        [ -z "$found" ] || { echo "$found"; return 0; }
    done
}

missing=()
declare -A seen=()
while read -r lib path; do
    case "$path" in "$BUNDLE"/*) continue ;; not) continue ;; esac
    package="$(owner "$path")"
    [ -n "$package" ] || { missing+=("$lib (no package owns $path)"); continue; }
    [ -n "${seen[$package]:-}" ] && continue
    seen[$package]=1
    # glvnd splits libGL into libglx0/libglvnd0/libopengl0: declared libgl1/libegl1 pull them in.
    case "$package" in libglvnd0|libglx0|libopengl0) continue ;; esac
    grep -qx "$package" <<<"$declared_names" || grep -qx "${package%t64}" <<<"$declared_names" \
        || missing+=("$lib (package $package)")
done < "$resolved"
# Wayland's libraries are optional (Qt falls back to X11 and they are Recommends); anything else
# missing here would be missing from the bundle too, and the app would not start on X11.
optional_missing="$(awk '$2 == "not" && $1 ~ /^libwayland-/ { print $1 }' "$resolved" | sort -u | tr '\n' ' ')"
[ -z "$optional_missing" ] || echo "note: not on this build machine (optional, Wayland): $optional_missing"
while read -r lib; do
    missing+=("$lib (not found on the build machine, so not bundled: install it before building,"
        "e.g. apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0)")
done < <(awk '$2 == "not" && $1 !~ /^libwayland-/ { print $1 }' "$resolved" | sort -u)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "error: the bundle links to system libraries the package does not declare:" >&2
    printf '  %s\n' "${missing[@]}" >&2
    exit 1
fi
echo "dependencies checked: every system library the bundle links to is declared"
