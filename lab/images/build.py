"""A Debian node's base image, built on the host at native speed with mmdebstrap.

From the local flat repository: the required set, a kernel with virtio
(``linux-image-cloud-amd64``), systemd, openssh-server, cloud-init and chrony, and, when the lab
bakes them, the role's packages with the debconf answers preseeded before they install. The
image is generalised (empty machine-id, no SSH host keys, no iSCSI initiator name or Erlang
cookie of the build's) and every unit the role's packages enabled is disabled again. The root
directory becomes an ext4 file system with ``mke2fs -d`` (label ``oslab-root``), converted to
qcow2; the kernel and initrd are kept beside it for direct kernel boot. cloud-init grows the
file system to the node's disk at first boot.

Images are cached by the hash of their inputs, under ``<cache>/debian/images/<hash>/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from oslab.distro import NODE_KERNEL_ARGS
from oslab.errors import OslabError
from oslab.images import rebuilds
from oslab.images.common import Say, debian_cache, digest, env, locked, run
from oslab.images.repo import Repo

FORMAT = 2  # bump when the image layout or the customize hook changes
ROOT_LABEL = "oslab-root"
# iputils-ping: the install guide's own checks ping from the nodes, and `oslab verify` pings
# the instance from inside the router's namespace when its floating IP does not answer.
BASE_PACKAGES = ("linux-image-cloud-amd64", "systemd-sysv", "udev", "openssh-server",
                 "cloud-init", "chrony", "e2fsprogs", "iproute2", "iputils-ping", "debconf")
MMDEBSTRAP_AUTOMOUNT = Path("/usr/share/mmdebstrap/hooks/file-mirror-automount")
MIB = 1 << 20


@dataclass(frozen=True)
class ImageInputs:
    """Everything that shapes a base image: its cache key."""

    distro: str
    suite: str
    role: str
    repo: str  # the repository's key
    packages: tuple[str, ...] = ()  # the role's packages baked in (sorted)
    preseed: str = ""  # debconf-set-selections text
    # (absolute path, text) written before the packages install, e.g. /etc/default files
    # that a package's maintainer scripts read instead of debconf
    files: tuple[tuple[str, str], ...] = ()
    # set by `oslab up --fresh-image`: a new base beside the cached one (whose overlays keep it)
    rebuild: str = ""

    def key(self) -> str:
        fields = asdict(self)
        if not self.rebuild:
            del fields["rebuild"]  # the keys of bases built before --fresh-image existed
        return digest({"format": FORMAT, "base": BASE_PACKAGES, **fields})


@dataclass(frozen=True)
class Image:
    dir: Path
    inputs: ImageInputs

    @property
    def disk(self) -> Path:
        return self.dir / "root.qcow2"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    @property
    def name(self) -> str:
        """The base's name in the cache pool: ``<distro>-<role>-<hash>``."""
        return f"{self.inputs.distro}-{self.inputs.role}-{self.inputs.key()}"

    @property
    def cmdline(self) -> str:
        return f"root=LABEL={ROOT_LABEL} ro {NODE_KERNEL_ARGS}"


def customize_script(inputs: ImageInputs, preseed_path: Path, files_dir: Path) -> str:
    """The mmdebstrap customize hook; ``files_dir/<i>`` holds the text of ``inputs.files[i]``."""
    files = [(str(files_dir / str(i)), path) for i, (path, _text) in enumerate(inputs.files)]
    return env.get_template("customize.sh.j2").render(
        role=inputs.role, packages=inputs.packages, preseed=str(preseed_path), files=files,
        label=ROOT_LABEL)


def mmdebstrap_argv(repo: Repo, inputs: ImageInputs, hook: Path, root: Path) -> list[str]:
    return ["mmdebstrap", "--mode=root", "--variant=required", "--format=directory",
            "--include=" + ",".join(BASE_PACKAGES),
            f"--customize-hook={hook}",
            f"--hook-dir={MMDEBSTRAP_AUTOMOUNT}",
            inputs.suite, str(root), f"deb [trusted=yes] {repo.file_uri} ./"]


def fs_size(used: int) -> int:
    """The ext4 size for ``used`` bytes of files: a quarter more plus 256 MiB, in whole MiB."""
    return ((used * 5 // 4 + 256 * MIB) // MIB) * MIB


def tree_size(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.lstat().st_size
    return total


def mount_points_below(path: Path, mountinfo: str) -> list[str]:
    """The mount points at or below ``path`` in ``/proc/self/mountinfo`` text, deepest first."""
    below = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if point == str(path) or point.startswith(str(path).rstrip("/") + "/"):
            below.append(point)
    return sorted(below, key=lambda p: p.count("/"), reverse=True)


def unmount_below(path: Path) -> None:
    for point in mount_points_below(path, Path("/proc/self/mountinfo").read_text()):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


def remove_tree(path: Path) -> None:
    """Remove a build's work tree, never walking into a bind mount left inside it."""
    if path.exists():
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)


def images_dir(base: Path | None = None) -> Path:
    """The host cache of base images (``base`` replaces ``<cache>/debian``)."""
    return (base or debian_cache()) / "images"


def lock_path(cache: Path, key: str) -> Path:
    """Held (exclusive) while the image with this key is built."""
    return cache / f"{key}.lock"


def use_path(cache: Path, key: str) -> Path:
    """Held (shared) by an `oslab up` from choosing this image until its overlays exist, so
    a prune never removes a base between its build and the first overlay on it."""
    return cache / f"{key}.use"


def chosen_inputs(inputs: ImageInputs, fresh: bool, base: Path | None = None) -> ImageInputs:
    """What to build or use for ``inputs`` (see :mod:`.rebuilds`)."""
    cache = images_dir(base)
    return rebuilds.choose(inputs, fresh, cache,
                           lambda latest: (cache / latest.key() / "manifest.json").is_file())


def build_image(repo: Repo, inputs: ImageInputs, say: Say, base: Path | None = None) -> Image:
    """The base image for ``inputs``, from the cache or built now from ``repo``. A rebuild
    (``inputs.rebuild`` set) becomes the one later runs choose."""
    cache = images_dir(base)
    image = _build(repo, inputs, say, cache)
    rebuilds.remember(inputs, cache)
    return image


def _build(repo: Repo, inputs: ImageInputs, say: Say, cache: Path) -> Image:
    image = Image(cache / inputs.key(), inputs)
    with locked(lock_path(cache, inputs.key())):
        if (image.dir / "manifest.json").is_file():
            say(f"base image {image.name}: cached")
            return image
        start = time.monotonic()
        tmp = image.dir.with_name(image.dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # the work tree is named by the key, so a build killed with it (SIGTERM, kill -9,
        # a power loss) leaves nothing the next build of that image does not remove
        work = image.dir.with_name(image.dir.name + ".work")
        remove_tree(work)
        work.mkdir(parents=True)
        try:
            preseed = work / "preseed.txt"
            preseed.write_text(inputs.preseed)
            files_dir = work / "files"
            files_dir.mkdir()
            for i, (_path, text) in enumerate(inputs.files):
                (files_dir / str(i)).write_text(text)
            hook = work / "customize.sh"
            hook.write_text(customize_script(inputs, preseed, files_dir))
            hook.chmod(0o755)
            root = work / "root"
            n = len(BASE_PACKAGES) + len(inputs.packages)
            try:
                run(mmdebstrap_argv(repo, inputs, hook, root), say,
                    f"mmdebstrap {inputs.suite} for {inputs.role} ({n} packages asked)",
                    hint="the full log is in the error above; the repository is "
                         + str(repo.path))
            finally:
                # a failed mmdebstrap leaves its hooks' bind mounts (the repository) in the
                # chroot: removing the work tree must never walk into them
                unmount_below(work)
            kernels = sorted((root / "boot").glob("vmlinuz-*"))
            initrds = sorted((root / "boot").glob("initrd.img-*"))
            if not kernels or not initrds:
                raise OslabError(f"the image for {inputs.role} has no kernel or initrd in /boot",
                                 hint="linux-image-cloud-amd64 must be among its packages")
            shutil.copy2(kernels[-1], tmp / "vmlinuz")
            shutil.copy2(initrds[-1], tmp / "initrd.img")
            used = tree_size(root)
            raw = work / "root.ext4"
            run(["mke2fs", "-q", "-t", "ext4", "-L", ROOT_LABEL, "-i", "8192", "-d", str(root),
                 str(raw), f"{fs_size(used) // MIB}M"], say,
                f"ext4 of {used / 1e6:.0f} MB (mke2fs -d)")
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw),
                 str(tmp / "root.qcow2")], say, "convert to qcow2")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a failed build publishes nothing
            raise
        finally:
            remove_tree(work)
        manifest = {"inputs": asdict(inputs), "key": inputs.key(), "name": image.name,
                    "cmdline": image.cmdline, "built_s": round(time.monotonic() - start, 1),
                    "built_at": round(time.time())}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.rename(image.dir)
        size = image.disk.stat().st_size
        say(f"base image {image.name}: {size / 1e6:.0f} MB qcow2, "
            f"in {time.monotonic() - start:.1f}s")
        return image
