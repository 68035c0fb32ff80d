#!/usr/bin/env bash
# Copy the Microsoft runtimes llama.cpp needs into DEST, for the installer to ship beside the app:
# the OpenMP runtime (vcomp140.dll: llama.cpp's CPU backend is built with MSVC's OpenMP) and the
# Visual C++ runtime (msvcp140*.dll, vcruntime140*.dll). A per-user install cannot run the VC++
# redistributable's installer (it needs administrator rights), so the DLLs go app-local, which
# Microsoft's redistribution terms allow for these files.
#
#   packaging/windows/collect_runtime.sh DEST     (Git Bash, in a Visual Studio developer shell)
#
# Source: the redistributable folder of the Visual Studio that built llama.cpp ($VCToolsRedistDir,
# set by the developer shell), else the system's copies.
set -euo pipefail
DEST="${1:?usage: collect_runtime.sh DEST}"
mkdir -p "$DEST"
OPENMP=(vcomp140.dll)
CRT=(msvcp140.dll msvcp140_1.dll msvcp140_2.dll vcruntime140.dll vcruntime140_1.dll)

find_dll() {
    local name="$1" folder
    if [ -n "${VCToolsRedistDir:-}" ]; then
        folder="$(cygpath -u "$VCToolsRedistDir" 2>/dev/null || echo "$VCToolsRedistDir")"
        find "$folder/x64" -iname "$name" -path '*Microsoft.VC*' ! -path '*debug*' 2>/dev/null | head -1
        return 0
    fi
    for folder in /c/Windows/System32 "${SYSTEMROOT:-C:/Windows}/System32"; do
        [ -f "$folder/$name" ] && { echo "$folder/$name"; return 0; }
    done
    return 0
}

for name in "${OPENMP[@]}" "${CRT[@]}"; do
    source_path="$(find_dll "$name")"
    if [ -z "$source_path" ]; then
        echo "error: $name not found (run in a Visual Studio developer shell)" >&2
        exit 1
    fi
    cp "$source_path" "$DEST/$name"
    echo "runtime: $name <- $source_path"
done
