#!/bin/bash
# Build (or reuse from the cache) the oslab test instance image: a small cirros-like disk
# image that `oslab verify --image PATH` boots instead of cirros.
#
# Usage: tests/instance/build.sh
#   Progress goes to stderr; the last line on stdout is the absolute path of the image.
#   Beside it, PATH.json is its manifest (login user, disk format, minimum disk and RAM,
#   image properties), which oslab reads. Cache dir: ${OSLAB_TEST_CACHE:-$HOME/.cache/oslab-tests}.
#   The names carry a hash of the build inputs (this script, rootfs/, packages.txt and the
#   exact Debian package versions, kernel included), so it is rebuilt only when one changes.
#
# What it is: Debian's cloud kernel and a busybox initramfs that never leaves RAM (no root
# filesystem): DHCP on the first NIC (udhcpc), the SSH key from a config drive or the
# metadata service, dropbear, a login prompt on ttyS0 (rootfs/etc/init.d/rcS).
# How it boots: a BIOS disk with an MBR (syslinux's mbr.bin) and one FAT partition holding
# syslinux (ldlinux.sys), the kernel and the initramfs. Every step works on plain files
# (sfdisk on the image, mkfs.fat -C, syslinux --install and mcopy through mtools), so
# nothing is mounted and no loop device is needed.
#
# Needs the Debian 12 packages in packages.txt; the kernel (linux-image-cloud-amd64's
# versioned dependency) is fetched with `apt-get download` and unpacked, never installed.
# Run as root (device nodes in the initramfs). Environment: OSLAB_TEST_CACHE, OSLAB_TEST_KERNEL.
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${OSLAB_TEST_CACHE:-$HOME/.cache/oslab-tests}
KERNEL_META=${OSLAB_TEST_KERNEL:-linux-image-cloud-amd64}
NAME=oslab-instance
USER_NAME=cirros
# Loaded in this order by rcS. The volume test hot-plugs a virtio disk (ACPI/PCIe hotplug
# are built into the kernel); ata_piix, sr_mod and isofs read a config drive on the IDE
# CD-ROM of the pc machine, vfat one written as a disk.
MODULES="virtio_pci virtio_blk virtio_net virtio_scsi sd_mod ata_piix sr_mod isofs vfat
nls_cp437 nls_iso8859_1 button"

log() { echo "instance/build.sh: $*" >&2; }
die() { echo "instance/build.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run it as root (the initramfs needs device nodes)"

# --- host checks and the cache key ------------------------------------------------------------
missing=()
versions=()
while read -r pkg; do
    case $pkg in '' | '#'*) continue ;; esac
    st=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
    case $st in
    "installed "*) versions+=("$pkg=${st#installed }") ;;
    *) missing+=("$pkg") ;;
    esac
done <"$HERE/packages.txt"
[ "${#missing[@]}" -eq 0 ] ||
    die "missing Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})"

KPKG=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[ -n "$KPKG" ] || die "cannot resolve $KERNEL_META to a versioned kernel package (run apt-get update)"
KVERSION=$(apt-cache policy "$KPKG" | awk '$1 == "Candidate:" { print $2; exit }')
case $KVERSION in '' | '(none)') die "no candidate version for $KPKG" ;; esac
versions+=("$KPKG=$KVERSION")

inputs() {
    (
        cd "$HERE"
        find build.sh packages.txt rootfs -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        find rootfs -type f -perm -u+x | LC_ALL=C sort
    )
    printf '%s\n' "${versions[@]}"
    echo "modules: $MODULES"
}
HASH=$(inputs | sha256sum | cut -c1-16)
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
IMAGE="$CACHE/$NAME-$HASH.qcow2"

cached() {
    if [ -s "$IMAGE" ] && [ -s "$IMAGE.json" ]; then
        log "cached: $IMAGE"
        echo "$IMAGE"
        exit 0
    fi
}
cached
exec 9>"$CACHE/.$NAME-build.lock"
flock 9
cached # built by a concurrent run while we waited

START=$(date +%s)
WORK=$(mktemp -d "$CACHE/.$NAME-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building $IMAGE (kernel $KPKG $KVERSION)"

# --- kernel and its modules -------------------------------------------------------------------
aptopts=(-q -o APT::Sandbox::User=root)
(cd "$WORK" && apt-get download "${aptopts[@]}" "$KPKG=$KVERSION") >&2
debs=("$WORK"/"$KPKG"_*.deb)
[ -f "${debs[0]}" ] || die "apt-get download $KPKG=$KVERSION produced no .deb"
dpkg-deb -x "${debs[0]}" "$WORK/kernel"
rm -f "${debs[@]}"
KDIR=$(find "$WORK/kernel" -mindepth 3 -maxdepth 4 -type d -path '*/lib/modules/*' | head -n 1)
[ -n "$KDIR" ] || die "no modules directory in $KPKG"
KREL=$(basename "$KDIR")
KBASE=${KDIR%/lib/modules/"$KREL"}
VMLINUZ=$(find "$WORK/kernel" -type f \( -name "vmlinuz-$KREL" -o -path "*/$KREL/vmlinuz" \) |
    head -n 1)
[ -n "$VMLINUZ" ] || die "no vmlinuz in $KPKG"
depmod -b "$KBASE" "$KREL"

# --- the initramfs: busybox, dropbear, the modules, rootfs/ ------------------------------------
R="$WORK/root"
mkdir -p "$R"/usr/bin "$R"/usr/sbin "$R"/usr/lib "$R"/usr/lib64 "$R"/dev "$R"/proc "$R"/sys \
    "$R"/run "$R"/tmp "$R"/root "$R"/home/"$USER_NAME" "$R"/etc/instance "$R"/var
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
ln -s ../run "$R/var/run"
ln -s ../tmp "$R/var/tmp"
chmod 1777 "$R/tmp"
chmod 700 "$R/root"
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

install -m 755 /bin/busybox "$R/usr/bin/busybox"
busybox --list-full | while read -r applet; do
    case $applet in
    bin/* | usr/bin/*) link="usr/bin/${applet##*/}" target=busybox ;;
    sbin/* | usr/sbin/*) link="usr/sbin/${applet##*/}" target=../bin/busybox ;;
    *) continue ;;
    esac
    [ -e "$R/$link" ] || ln -s "$target" "$R/$link"
done
ln -s usr/bin/busybox "$R/init" # the kernel runs /init: busybox init, which reads /etc/inittab

# A host binary and the libraries ldd names, at their merged-/usr paths.
add_elf() {
    local src=$1 dest=$2 lib
    install -D -m 755 "$src" "$R$dest"
    ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        while read -r lib; do
            case $lib in /lib/* | /lib64/*) lib_dest=/usr$lib ;; *) lib_dest=$lib ;; esac
            [ -e "$R$lib_dest" ] || install -D -m 755 "$lib" "$R$lib_dest"
        done
}
rm -f "$R/usr/sbin/dropbear" "$R/usr/bin/dropbearkey"
add_elf /usr/sbin/dropbear /usr/sbin/dropbear
add_elf /usr/bin/dropbearkey /usr/bin/dropbearkey

mkdir -p "$R/usr/lib/modules/$KREL"
for m in $MODULES; do
    modprobe -d "$KBASE" -S "$KREL" --show-depends "$m" >"$WORK/deps" ||
        die "kernel module $m not found in $KPKG"
    awk '$1 == "insmod" { print $2 }' "$WORK/deps" | while read -r path; do
        install -D -m 644 "$path" "$R/usr/lib/modules/$KREL/${path#"$KDIR"/}"
    done
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -f "$KDIR/$f" ] && cp "$KDIR/$f" "$R/usr/lib/modules/$KREL/"
done
depmod -b "$R" "$KREL"
for m in $MODULES; do echo "$m"; done >"$R/etc/instance/modules"

cp -a "$HERE/rootfs/." "$R/"
chmod 755 "$R/etc/init.d/rcS" "$R/usr/share/udhcpc/default.script" \
    "$R/usr/libexec/instance/ssh-key" "$R/etc/acpi/PWRF/00000080"
chmod 600 "$R/etc/shadow"
{
    echo "BUILD=$HASH"
    echo "KERNEL_RELEASE=$KREL"
    printf 'PACKAGE=%s\n' "${versions[@]}"
} >"$R/etc/instance/release"

(cd "$R" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet) | zstd -q -19 -T0 >"$WORK/initrd.img"

# --- the disk: MBR + one bootable FAT partition with syslinux ------------------------------------
cat >"$WORK/syslinux.cfg" <<'EOF'
DEFAULT instance
PROMPT 0
TIMEOUT 1
LABEL instance
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND console=tty0 console=ttyS0,115200n8 quiet loglevel=4
EOF
files=("$VMLINUZ" "$WORK/initrd.img" "$WORK/syslinux.cfg")
payload_kib=$(du -k -c "${files[@]}" | tail -n 1 | cut -f1)
part_mib=$(((payload_kib / 1024) + 4)) # ldlinux.sys/.c32 and FAT overhead
mkfs.fat -C -n OSLABBOOT "$WORK/part.img" $((part_mib * 1024)) >/dev/null
syslinux --install "$WORK/part.img"
mcopy -i "$WORK/part.img" "$VMLINUZ" ::/vmlinuz
mcopy -i "$WORK/part.img" "$WORK/initrd.img" ::/initrd.img
mcopy -i "$WORK/part.img" "$WORK/syslinux.cfg" ::/syslinux.cfg

disk_mib=$((part_mib + 1))
truncate -s "${disk_mib}M" "$WORK/disk.raw"
echo 'start=2048, type=c, bootable' | sfdisk -q --label dos "$WORK/disk.raw"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/part.img" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$WORK/disk.raw" "$WORK/image.qcow2"

sha=$(sha256sum "$WORK/image.qcow2" | cut -d' ' -f1)
cat >"$WORK/image.qcow2.json" <<EOF
{
  "name": "$NAME",
  "user": "$USER_NAME",
  "disk_format": "qcow2",
  "min_disk_gib": 1,
  "min_ram_mib": 128,
  "properties": {"hw_disk_bus": "virtio", "hw_vif_model": "virtio"},
  "sha256": "$sha",
  "build": "$HASH",
  "kernel": "$KREL"
}
EOF
chmod 644 "$WORK/image.qcow2" "$WORK/image.qcow2.json"
mv -f "$WORK/image.qcow2.json" "$IMAGE.json"
mv -f "$WORK/image.qcow2" "$IMAGE"

log "kernel $(du -k "$VMLINUZ" | cut -f1) KiB, initramfs $(du -k "$WORK/initrd.img" | cut -f1) KiB, disk ${disk_mib} MiB, qcow2 $(du -k "$IMAGE" | cut -f1) KiB"
log "built in $(($(date +%s) - START)) s"
echo "$IMAGE"
