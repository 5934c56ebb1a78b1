#!/usr/bin/env bash
# Prepare this machine (Debian 12, root) as the pbox controller: the system packages the
# lab and the tests need (chromium + chromium-driver for the portal's browser tests, and the CJK
# font the vehicle-file PDF embeds), then the Python virtualenv with the project installed.
# Idempotent: a second run only checks. Used by `make deps` (and so by `make demo`, `make test`).
set -euo pipefail

VENV=${VENV:-.venv}
PACKAGES=(
  systemd-container debootstrap apt-cacher-ng iproute2 openssh-client zstd rsync curl
  qemu-system-x86 qemu-utils postgresql postgresql-contrib sshpass wireguard-tools
  chromium chromium-driver fonts-wqy-microhei
  softhsm2  # the PKCS#11 key provider's tests (a token in a tmp dir; issue 24)
  pgbackrest  # bench/restore_bench.py (and its smoke run in tests/app/test_bench_smoke.py)
  prometheus  # for promtool: the alert rules' unit tests (its daemon stays off, see below)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing system packages: ${missing[*]}"
  # Packages must not start their own daemons here: the lab runs its own apt-cacher-ng
  # on the lab bridge, and tests start their own PostgreSQL clusters.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The controller only needs promtool: the prometheus daemon the package brings stays off (not started
# at install, see policy-rc.d above, and not at boot).
if systemctl is-enabled --quiet prometheus 2>/dev/null; then
  systemctl disable --quiet prometheus
fi

command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || {
  echo "error: Go (>= 1.24) is needed to build the MinIO server artifact" >&2; exit 1; }

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "==> installing the Python environment in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[ops,dev]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
