#!/usr/bin/env bash
# Install the tools exvault's benchmarks compare against (Debian/Ubuntu).
#
#   bash benchmarks/install-peers.sh          # as root, or with sudo available
#
# Debian packages: pass, gnupg, keepassxc (for keepassxc-cli), age, hyperfine.
# PyPI packages, into the Python environment that runs the benchmarks
# ($PYTHON, else the active venv's python, else ./.venv/bin/python, else python3):
# pykeepass, eth-keyfile.
# A peer that fails to install is reported as "skipped (not installed)" by the
# benchmarks, never faked.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

APT_PACKAGES=(pass gnupg keepassxc age hyperfine)
PIP_PACKAGES=(pykeepass eth-keyfile)

if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    # --no-install-recommends: keepassxc would otherwise pull in a desktop's worth.
    if ! $SUDO apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"; then
        echo "install-peers: installing the Debian packages one by one" >&2
        for pkg in "${APT_PACKAGES[@]}"; do
            $SUDO apt-get install -y -q --no-install-recommends "$pkg" \
                || echo "install-peers: $pkg not installed (its figure will be skipped)" >&2
        done
    fi
else
    echo "install-peers: no apt-get; install ${APT_PACKAGES[*]} by hand" >&2
fi

if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    PY="$VIRTUAL_ENV/bin/python"
elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
else
    PY="$(command -v python3 || command -v python)"
fi
"$PY" -m pip install -q "${PIP_PACKAGES[@]}"

echo "install-peers: done"
for tool in pass gpg keepassxc-cli age hyperfine; do
    if command -v "$tool" >/dev/null 2>&1; then
        echo "  $tool: $(command -v "$tool")"
    else
        echo "  $tool: missing"
    fi
done
"$PY" -c 'import pykeepass, eth_keyfile; print("  pykeepass, eth_keyfile: importable")' \
    || echo "  pykeepass/eth_keyfile: missing"
