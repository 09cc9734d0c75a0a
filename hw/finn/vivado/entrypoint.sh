#!/usr/bin/env bash
# Entry point of the xnorflow synthesis image (Dockerfile, target `synthesis`).
#
# The image holds xnorflow, finn-plus and FINN's dependencies; the Xilinx tools are the host's,
# mounted read-only (docker run -v /tools/Xilinx:/tools/Xilinx:ro). This script finds them,
# checks the version against what finn-plus supports, sources their settings64.sh and runs the
# command. Anything missing ends with a message that says what and how to fix it, exit code 3
# (xnorflow's "vendor tools missing"), before the command starts.
#
# Environment: XILINX_ROOT (default /tools/Xilinx), XILINX_VERSION (needed only when the mount
# holds several supported versions).
set -euo pipefail

SUPPORTED_VERSIONS="2022.2 2024.2"   # finn-plus 1.6.1; the same list as hw/finn/env.py
ROOT="${XILINX_ROOT:-/tools/Xilinx}"
RUN_HINT="docker run -v /tools/Xilinx:/tools/Xilinx:ro ... (or -e XILINX_ROOT=<mount point>)"

fail() {
    echo "xnorflow synthesis image: $*" >&2
    exit 3
}

is_supported() {
    local version
    for version in $SUPPORTED_VERSIONS; do
        [ "$1" = "$version" ] && return 0
    done
    return 1
}

[ -d "$ROOT" ] || fail "no Xilinx tools at $ROOT. Mount the host's installation: $RUN_HINT.
Supported Vivado/Vitis versions: ${SUPPORTED_VERSIONS// / and }."

installed=""
for settings in "$ROOT"/Vivado/*/settings64.sh; do
    [ -f "$settings" ] && installed="$installed $(basename "$(dirname "$settings")")"
done
installed="${installed# }"
[ -n "$installed" ] || fail "$ROOT holds no Vivado (no $ROOT/Vivado/<version>/settings64.sh).
Mount the folder that contains Vivado/ and Vitis/: $RUN_HINT."

if [ -n "${XILINX_VERSION:-}" ]; then
    version="$XILINX_VERSION"
    is_supported "$version" || fail "XILINX_VERSION=$version is not supported by finn-plus \
1.6.1; supported: ${SUPPORTED_VERSIONS// / and }."
    [ -f "$ROOT/Vivado/$version/settings64.sh" ] || fail "XILINX_VERSION=$version, but \
$ROOT/Vivado/$version/settings64.sh does not exist (installed: $installed)."
else
    usable=""
    for version in $installed; do
        is_supported "$version" && usable="$usable $version"
    done
    usable="${usable# }"
    [ -n "$usable" ] || fail "Vivado $installed at $ROOT is not supported by finn-plus 1.6.1; \
install ${SUPPORTED_VERSIONS// / or } (Vivado and Vitis of the same version)."
    [ "$usable" = "${usable%% *}" ] || fail "$ROOT holds several supported versions ($usable); \
choose one with -e XILINX_VERSION=<version>."
    version="$usable"
fi

# Vitis HLS: its own tree up to 2024.1, part of Vitis from 2024.2 on.
hls_settings=""
for candidate in "$ROOT/Vitis_HLS/$version/settings64.sh" "$ROOT/Vitis/$version/settings64.sh"; do
    if [ -f "$candidate" ]; then
        hls_settings="$candidate"
        break
    fi
done
[ -n "$hls_settings" ] || fail "Vivado $version found, but no Vitis HLS $version \
($ROOT/Vitis_HLS/$version or $ROOT/Vitis/$version). FINN's HLS synthesis needs both, of the \
same version."

set +u  # the vendors' settings scripts read unset variables
# shellcheck disable=SC1090
source "$ROOT/Vivado/$version/settings64.sh"
# shellcheck disable=SC1090
source "$hls_settings"
set -u
for tool in vivado vitis_hls; do
    command -v "$tool" >/dev/null || fail "sourcing the $version settings did not put $tool on \
PATH; the installation at $ROOT may be incomplete."
done
[ -n "${XILINX_VIVADO:-}" ] || fail "sourcing $ROOT/Vivado/$version/settings64.sh did not set \
XILINX_VIVADO; the installation may be incomplete."

# A container started with --user <host uid> has no home of its own: Vivado and FINN write there.
if [ ! -w "${HOME:-/nonexistent}" ]; then
    export HOME=/tmp/xnorflow-home
    mkdir -p "$HOME"
fi
export XILINX_LOCAL_USER_DATA=no  # as finn-plus sets it: no per-user Xilinx cache
echo "xnorflow synthesis image: Vivado $version from $ROOT" >&2
exec "$@"
