#!/bin/bash
# Build (or reuse from the cache) the "testlinux" installer ISO for oslab's
# integration tests.
#
# Usage: tests/guest/build.sh
#   Progress goes to stderr; the last line on stdout is the absolute path of
#   the ISO.  Cache dir: ${OSLAB_TEST_CACHE:-$HOME/.cache/oslab-tests}.
#   The ISO name carries a hash of the build inputs (build.sh, mkiso.py,
#   packages.txt, rootfs/ and the exact Debian package versions, kernel
#   included), so it is rebuilt only when one of them changes.
#
# The ISO mimics the CentOS Stream 9 layout: volume label TESTLINUX,
# images/pxeboot/vmlinuz and images/pxeboot/initrd.img.  The initrd is a
# busybox + OpenSSH userland whose /init is a kickstart "installer"
# (rootfs/usr/libexec/testlinux/install) when the kernel command line has
# inst.ks=, and a tiny "mount root= and switch_root" when it has root=.
#
# Needs the Debian 12 packages in packages.txt installed on the host; the
# kernel (linux-image-cloud-amd64's versioned dependency) is fetched with
# `apt-get download` and unpacked with dpkg-deb, never installed.
# Environment: OSLAB_TEST_CACHE (cache dir), OSLAB_TEST_KERNEL (kernel
# meta package, default linux-image-cloud-amd64), OSLAB_PYTHON (a python
# with pycdlib).
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${OSLAB_TEST_CACHE:-$HOME/.cache/oslab-tests}
KERNEL_META=${OSLAB_TEST_KERNEL:-linux-image-cloud-amd64}
LABEL=TESTLINUX

# Kernel modules in the installer / installed system (with dependencies).
MODULES="virtio_pci virtio_blk virtio_net virtio_scsi sd_mod sr_mod isofs
button evdev virtio-rng virtio_balloon virtio_console loop"
# Kernel modules in the small initrd the installed system boots with.
BOOT_MODULES="virtio_pci virtio_blk virtio_scsi sd_mod"

log() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: error: $*" >&2; exit 1; }

# --- host checks -----------------------------------------------------------
PYTHON=
for p in ${OSLAB_PYTHON:-} /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import pycdlib' 2>/dev/null; then
        PYTHON=$p
        break
    fi
done

missing=()
versions=()
while read -r pkg; do
    case $pkg in '' | '#'*) continue ;; esac
    st=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
    case $st in
    "installed "*) versions+=("$pkg=${st#installed }") ;;
    *)
        if [ "$pkg" = python3-pycdlib ] && [ -n "$PYTHON" ]; then
            versions+=("pycdlib=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("pycdlib"))' 2>/dev/null || echo unknown)")
        else
            missing+=("$pkg")
        fi
        ;;
    esac
done <"$HERE/packages.txt"
if [ "${#missing[@]}" -gt 0 ]; then
    die "missing Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})"
fi
[ -n "$PYTHON" ] || die "no python3 with pycdlib (apt-get install python3-pycdlib)"

KPKG=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[ -n "$KPKG" ] || die "cannot resolve $KERNEL_META to a versioned kernel package (run apt-get update)"
KVERSION=$(apt-cache policy "$KPKG" | awk '$1 == "Candidate:" { print $2; exit }')
case $KVERSION in '' | '(none)') die "no candidate version for $KPKG" ;; esac
versions+=("$KPKG=$KVERSION")

# --- cache key ---------------------------------------------------------------
build_inputs() {
    (
        cd "$HERE"
        find build.sh mkiso.py packages.txt rootfs -type f -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum
        find rootfs -type f -perm -u+x | LC_ALL=C sort
        find rootfs -type l -printf '%p -> %l\n' | LC_ALL=C sort
    )
    printf '%s\n' "${versions[@]}"
    echo "modules: $MODULES / $BOOT_MODULES"
}
HASH=$(build_inputs | sha256sum | cut -c1-16)
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ISO="$CACHE/testlinux-$HASH.iso"

if [ -s "$ISO" ]; then
    log "cached: $ISO"
    echo "$ISO"
    exit 0
fi

exec 9>"$CACHE/.testlinux-build.lock"
flock 9
if [ -s "$ISO" ]; then # built by a concurrent run while we waited
    log "cached: $ISO"
    echo "$ISO"
    exit 0
fi

START=$(date +%s)
WORK=$(mktemp -d "$CACHE/.testlinux-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building $ISO"
log "kernel: $KPKG $KVERSION"

# --- kernel ------------------------------------------------------------------
aptopts=(-q)
if [ "$(id -u)" = 0 ]; then
    aptopts+=(-o APT::Sandbox::User=root)
fi
(cd "$WORK" && apt-get download "${aptopts[@]}" "$KPKG=$KVERSION") >&2
debs=("$WORK"/"$KPKG"_*.deb)
[ -f "${debs[0]}" ] || die "apt-get download $KPKG=$KVERSION produced no .deb"
dpkg-deb -x "${debs[0]}" "$WORK/kernel"
rm -f "${debs[@]}"
KDIR=
for d in "$WORK"/kernel/lib/modules/* "$WORK"/kernel/usr/lib/modules/*; do
    [ -d "$d" ] && KDIR=$d && break
done
[ -n "$KDIR" ] || die "no modules directory in $KPKG"
KREL=$(basename "$KDIR")
KBASE=${KDIR%/lib/modules/"$KREL"}
VMLINUZ=
for f in "$WORK/kernel/boot/vmlinuz-$KREL" "$WORK/kernel/usr/lib/modules/$KREL/vmlinuz"; do
    [ -f "$f" ] && VMLINUZ=$f && break
done
[ -n "$VMLINUZ" ] || die "no vmlinuz in $KPKG"
depmod -b "$KBASE" "$KREL"

# --- helpers -------------------------------------------------------------------
# Lay out an empty merged-/usr root at $1.
new_root() {
    local r=$1
    mkdir -p "$r"/usr/bin "$r"/usr/sbin "$r"/usr/lib "$r"/usr/lib64 \
        "$r"/dev "$r"/proc "$r"/sys "$r"/run "$r"/tmp "$r"/mnt "$r"/etc
    ln -s usr/bin "$r/bin"
    ln -s usr/sbin "$r/sbin"
    ln -s usr/lib "$r/lib"
    ln -s usr/lib64 "$r/lib64"
    chmod 1777 "$r/tmp"
    install -m 755 /bin/busybox "$r/usr/bin/busybox"
    local a d
    # Relative links only: the staging tree must never point into the host.
    busybox --list-full | while read -r a; do
        case $a in
        bin/*) d=usr/bin/${a#bin/} ;;
        sbin/*) d=usr/sbin/${a#sbin/} ;;
        usr/bin/* | usr/sbin/*) d=$a ;;
        *) continue ;;
        esac
        [ -e "$r/$d" ] || [ -L "$r/$d" ] && continue
        case $d in
        usr/bin/*) ln -s busybox "$r/$d" ;;
        usr/sbin/*) ln -s ../bin/busybox "$r/$d" ;;
        esac
    done
    if [ "$(id -u)" = 0 ]; then
        mknod -m 600 "$r/dev/console" c 5 1
        mknod -m 666 "$r/dev/null" c 1 3
    fi
}

# Host path -> path in the merged-/usr guest.
guest_path() {
    case $1 in
    /lib/* | /lib64/* | /bin/* | /sbin/*) echo "/usr$1" ;;
    *) echo "$1" ;;
    esac
}

# Copy a dynamically linked host binary and its libraries into root $1.
copy_elf() {
    local r=$1 src=$2 dest lib gl
    dest=$(guest_path "${3:-$src}")
    rm -f "$r$dest"
    install -D -m 755 "$src" "$r$dest"
    ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        while read -r lib; do
            gl=$(guest_path "$lib")
            [ -e "$r$gl" ] || install -D -m 755 "$lib" "$r$gl"
        done
}

# Copy kernel modules $2.. (with their dependencies) into root $1, run depmod.
copy_modules() {
    local r=$1 m line path rel
    shift
    mkdir -p "$r/usr/lib/modules/$KREL"
    for m in "$@"; do
        modprobe -d "$KBASE" -S "$KREL" --show-depends "$m" >"$WORK/deps" ||
            die "kernel module $m not found in $KPKG"
        while read -r line; do
            case $line in
            insmod\ *)
                path=${line#insmod }
                path=${path%% *}
                rel=${path#"$KDIR"/}
                install -D -m 644 "$path" "$r/usr/lib/modules/$KREL/$rel"
                ;;
            esac
        done <"$WORK/deps"
    done
    for m in modules.order modules.builtin modules.builtin.modinfo; do
        [ -f "$KDIR/$m" ] && cp "$KDIR/$m" "$r/usr/lib/modules/$KREL/"
    done
    depmod -b "$r" "$KREL"
}

# Write a zstd-compressed newc cpio of directory $1 to $2.
make_cpio() {
    (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet) | zstd -q -19 -T0 >"$2"
}

# --- the installed system / installer userland ---------------------------------
R="$WORK/root"
new_root "$R"
mkdir -p "$R"/boot "$R"/root "$R"/home "$R"/var/log "$R"/var/tmp "$R"/var/empty \
    "$R"/var/lib "$R"/mnt/sysimage "$R"/etc/ssh "$R"/etc/testlinux
ln -s ../run "$R/var/run"
chmod 700 "$R/root"
chmod 1777 "$R/var/tmp"

copy_elf "$R" /usr/sbin/sshd
copy_elf "$R" /usr/lib/openssh/sftp-server
copy_elf "$R" /usr/bin/ssh-keygen
copy_elf "$R" /sbin/mke2fs
copy_elf "$R" /sbin/sfdisk
copy_elf "$R" /usr/bin/extlinux
for l in mkfs.ext4 mkfs.ext2; do
    rm -f "$R/usr/sbin/$l"
    ln -s mke2fs "$R/usr/sbin/$l"
done
cp /etc/mke2fs.conf "$R/etc/mke2fs.conf"
install -D -m 644 /usr/lib/syslinux/mbr/mbr.bin "$R/usr/lib/syslinux/mbr/mbr.bin"
# shellcheck disable=SC2086  # word splitting of the module lists is wanted
copy_modules "$R" $MODULES

cp -a "$HERE/rootfs/." "$R/"
chmod 755 "$R/init" "$R"/usr/libexec/testlinux/* "$R"/etc/init.d/* \
    "$R/etc/acpi/PWRF/00000080" "$R/usr/share/udhcpc/default.script"
chmod 644 "$R/usr/libexec/testlinux/ksparse.awk" "$R/usr/libexec/testlinux/cidata.awk" \
    "$R/etc/passwd" "$R/etc/group"
chmod 600 "$R/etc/shadow"

{
    echo "TESTLINUX_BUILD=$HASH"
    echo "KERNEL_RELEASE=$KREL"
    printf 'PACKAGE=%s\n' "${versions[@]}"
} >"$R/etc/testlinux-release"

# --- the small initrd of the installed system ----------------------------------
B="$WORK/bootfs"
new_root "$B"
mkdir -p "$B/sysroot"
install -m 755 "$R/init" "$B/init"
# shellcheck disable=SC2086
copy_modules "$B" $BOOT_MODULES
mkdir -p "$R/usr/lib/testlinux"
make_cpio "$B" "$R/usr/lib/testlinux/boot-initrd.img"

# --- initrd + ISO -----------------------------------------------------------------
make_cpio "$R" "$WORK/initrd.img"
"$PYTHON" "$HERE/mkiso.py" --label "$LABEL" --out "$WORK/testlinux.iso" \
    "images/pxeboot/vmlinuz=$VMLINUZ" \
    "images/pxeboot/initrd.img=$WORK/initrd.img" \
    "testlinux-release.txt=$R/etc/testlinux-release"
chmod 644 "$WORK/testlinux.iso"
mv -f "$WORK/testlinux.iso" "$ISO"

log "initrd $(du -k "$WORK/initrd.img" | cut -f1) KiB, boot initrd $(du -k "$R/usr/lib/testlinux/boot-initrd.img" | cut -f1) KiB, ISO $(du -k "$ISO" | cut -f1) KiB"
log "built in $(($(date +%s) - START)) s"
echo "$ISO"
