#!/usr/bin/env bash
# Set up this host for oslab: Debian's libvirt and qemu, a venv with oslab in it, and the
# libvirt daemons running.  Run as root on Debian 12 or 13 (or a derivative).
#
#   scripts/setup-host.sh            packages, .venv, start virtlogd + libvirtd
#   scripts/setup-host.sh --test     also what the test suite needs (guest build inputs, linters)
#   scripts/setup-host.sh --e2e      also what scripts/e2e.sh's browser row needs (Debian's
#                                    chromium and chromedriver, Selenium)
#   scripts/setup-host.sh --no-services   do not start the daemons (scripts/test.sh starts
#                                    its own libvirtd inside a network namespace)
#   scripts/setup-host.sh --no-backports  on Debian 12, keep the archive's QEMU 7.2 (by default
#                                    QEMU 10.0 and libvirt 11.3 come from bookworm-backports)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
test_deps=0
e2e_deps=0
services=1
backports=1
for arg in "$@"; do
    case "$arg" in
        --test) test_deps=1 ;;
        --e2e) e2e_deps=1 ;;
        --no-services) services=0 ;;
        --no-backports) backports=0 ;;
        *) echo "setup-host.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done
log() { echo "setup-host: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: run it as root (it installs Debian packages and starts libvirtd)" >&2
    exit 1
fi

packages=(
    libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
    # a saved lab's export and import: a tar stream that zstd compresses
    zstd
    dnsmasq-base iptables iproute2 openssh-client
    # oslab verify pings the instance's floating IP from this host
    iputils-ping
    # Debian node images: repository (apt-ftparchive), mmdebstrap, ext4 and the archive's keys
    mmdebstrap apt-utils e2fsprogs debian-archive-keyring
    # to build libvirt-python in the venv
    libvirt-dev pkg-config gcc python3-dev python3-venv
)
if [ "$test_deps" = 1 ]; then
    packages+=(shellcheck)
    # the test guest's and the test instance image's build inputs
    while read -r p; do
        [ -n "$p" ] && packages+=("$p")
    done < <(grep -hv '^\s*#' "$repo/tests/guest/packages.txt" "$repo/tests/instance/packages.txt")
fi

if [ "$e2e_deps" = 1 ]; then
    packages+=(chromium chromium-driver)
fi

# QEMU before 8.1 has a TCG bug (fixed by "accel/tcg: Always lock pages before translation")
# that panics a multi-vCPU guest's kernel while it patches its own code live: under TCG, one in
# four first iSCSI logins panicked a compute node (issue 21). Debian 12's archive has QEMU 7.2;
# its backports carry QEMU 10.0 with the libvirt 11.3 made for it, as in Debian 13. Take both
# from there, unless --no-backports.
virt=(libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
      qemu-system-x86 qemu-utils)
qemu_version=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
codename=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release)
if [ "$backports" = 1 ] && [ "$codename" = bookworm ] \
        && ! dpkg --compare-versions "${qemu_version:-0}" ge 1:8.1; then
    log "Debian 12's QEMU ${qemu_version:-(none)} panics TCG guests (issue 21): installing" \
        "QEMU and libvirt from bookworm-backports"
    cat > /etc/apt/sources.list.d/oslab-bookworm-backports.sources <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq -o DPkg::Lock::Timeout=600
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends \
        -t bookworm-backports "${virt[@]}" >/dev/null
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq -o DPkg::Lock::Timeout=600
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv"
fi
extras=()
[ "$test_deps" = 1 ] && extras+=(test)
[ "$e2e_deps" = 1 ] && extras+=(e2e)
extra=""
[ "${#extras[@]}" -gt 0 ] && extra="[$(IFS=,; echo "${extras[*]}")]"
stamp="$venv/.oslab-installed"
want=$(cat "$repo/pyproject.toml" <(echo "$extra") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing oslab$extra into $venv"
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
    "$venv/bin/pip" install -q -e "$repo$extra"
    echo "$want" > "$stamp"
fi

if [ "$services" = 1 ]; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl enable --now virtlogd.socket libvirtd.socket >/dev/null 2>&1 \
            || systemctl enable --now libvirtd
    else
        pgrep -x virtlogd >/dev/null || virtlogd -d
        pgrep -x libvirtd >/dev/null || libvirtd -d
    fi
    log "libvirtd is running"
fi
log "done: run oslab as $venv/bin/oslab"
