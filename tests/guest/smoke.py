#!/usr/bin/env python3
"""Smoke test of the testlinux guest with plain qemu (no libvirt).

Developer tool, not a pytest test.  Run as root on Debian 12 with the
packages in packages.txt and smoke-packages.txt installed:

    /usr/bin/python3 tests/guest/smoke.py [--iso PATH] [--keep]

Steps: build (or reuse) the ISO with build.sh; make an OEMDRV ISO holding
sample-ks.cfg with fresh keys; boot the installer (kernel + initrd read from
the ISO with pycdlib, both ISOs on virtio-scsi); the installer powers off by
itself; boot the disk alone (-boot c); check SSH with the pinned host key,
the hostname, /dev/shm, SFTP put/chmod/chown/stat/get; press the ACPI power
button (QMP system_powerdown) and expect a clean power off; boot again and
check a file written to /root survived.

Networking is qemu user mode only (restrict=on, so the guest reaches
nothing), with hostfwd from 127.0.0.1:<free port> to the guest's port 22;
the second NIC sits alone on a qemu hub.  qemu runs under TCG.
"""

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep tests/guest clean

import mkiso  # noqa: E402

try:
    import paramiko
    import pycdlib
except ImportError as exc:  # pragma: no cover - developer tool
    sys.exit(
        f"smoke.py: {exc}; apt-get install python3-paramiko python3-pycdlib "
        "(and run with /usr/bin/python3)"
    )

MGMT_MAC = "52:54:00:00:00:11"
PROV_MAC = "52:54:00:00:00:12"
HOSTNAME = "smoke-node.example.test"
CMDLINE = "inst.stage2=hd:LABEL=TESTLINUX inst.ks=hd:LABEL=OEMDRV:/ks.cfg console=ttyS0"


def say(msg):
    print(f"smoke: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


class Fail(Exception):
    pass


class Qemu:
    """One qemu process that we started; stopped only by its own pid."""

    def __init__(self, work, name, args):
        self.log = os.path.join(work, f"{name}.log")
        self.qmp_path = os.path.join(work, f"{name}.qmp")
        for p in (self.log, self.qmp_path):
            if os.path.exists(p):
                os.unlink(p)
        cmd = [
            "qemu-system-x86_64",
            "-machine",
            "q35,accel=tcg",
            "-m",
            "512",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            f"file:{self.log}",
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
            "-no-reboot",
            *args,
        ]
        self.stderr = open(os.path.join(work, f"{name}.qemu-stderr"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr
        )
        self.started = time.monotonic()

    def wait_console(self, text, timeout):
        """Seconds from start until the console log shows text (None if not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if text in tail(self.log, 60):
                return time.monotonic() - self.started
            time.sleep(0.2)
        return None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def qmp(self, command):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.qmp_path)
        f = s.makefile("rw")
        json.loads(f.readline())
        for cmd in ({"execute": "qmp_capabilities"}, {"execute": command}):
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        s.close()
        return reply

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by pid
            self.proc.wait()
        self.stderr.close()


def base_args(work, disk, extra_disk, port):
    return [
        "-drive",
        f"if=none,id=vda,file={disk},format=qcow2",
        "-device",
        "virtio-blk-pci,drive=vda",
        "-drive",
        f"if=none,id=vdb,file={extra_disk},format=qcow2",
        "-device",
        "virtio-blk-pci,drive=vdb",
        "-netdev",
        f"user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device",
        f"virtio-net-pci,netdev=mgmt,mac={MGMT_MAC},romfile=",
        "-netdev",
        "hubport,id=prov,hubid=7",
        "-device",
        f"virtio-net-pci,netdev=prov,mac={PROV_MAC},romfile=",
    ]


def keygen(path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "smoke", "-f", path], check=True
    )
    with open(path) as f:
        priv = f.read().strip()
    with open(path + ".pub") as f:
        pub = f.read().strip()
    return priv, pub


def ssh_connect(port, host_pub, user_key, deadline, qemu):
    ktype, kdata = host_pub.split()[:2]
    key = paramiko.Ed25519Key(data=__import__("base64").b64decode(kdata))
    pkey = paramiko.Ed25519Key.from_private_key_file(user_key)
    last = None
    while time.monotonic() < deadline:
        if qemu.proc.poll() is not None:
            raise Fail(f"qemu exited ({qemu.proc.returncode}) while waiting for SSH")
        client = paramiko.SSHClient()
        client.get_host_keys().add(f"[127.0.0.1]:{port}", ktype, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            # short banner timeout: before sshd listens, slirp accepts the
            # TCP connection and then just sits on it
            client.connect(
                "127.0.0.1",
                port=port,
                username="root",
                pkey=pkey,
                look_for_keys=False,
                allow_agent=False,
                timeout=3,
                banner_timeout=3,
                auth_timeout=15,
            )
            return client
        except (paramiko.SSHException, OSError, EOFError) as exc:
            last = exc
            client.close()
            time.sleep(0.5)
    raise Fail(f"no SSH before the deadline (last error: {last!r})")


def run(client, cmd):
    _, out, err = client.exec_command(cmd, timeout=30)
    rc = out.channel.recv_exit_status()
    o, e = out.read().decode(), err.read().decode()
    if rc != 0:
        raise Fail(f"{cmd!r} exited {rc}: {o}{e}")
    return o


def check(cond, what):
    if not cond:
        raise Fail(what)
    say(f"ok: {what}")


def main():
    ap = argparse.ArgumentParser(description="testlinux qemu smoke test")
    ap.add_argument("--iso", help="use this ISO instead of running build.sh")
    ap.add_argument("--workdir", help="keep files here (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--disk-size", default="4G")
    args = ap.parse_args()

    work = args.workdir or tempfile.mkdtemp(prefix="testlinux-smoke.")
    os.makedirs(work, exist_ok=True)
    say(f"work dir {work}")
    times = {}
    running = []
    ok = False
    try:
        t = time.monotonic()
        if args.iso:
            iso = os.path.abspath(args.iso)
        else:
            out = subprocess.run(
                ["bash", os.path.join(HERE, "build.sh")],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
            iso = out.strip().splitlines()[-1]
        times["build (or cache hit)"] = time.monotonic() - t
        say(f"ISO {iso}")

        user_key = os.path.join(work, "user_key")
        host_key = os.path.join(work, "host_key")
        for p in (user_key, host_key, user_key + ".pub", host_key + ".pub"):
            if os.path.exists(p):
                os.unlink(p)
        _, user_pub = keygen(user_key)
        host_priv, host_pub = keygen(host_key)
        with open(os.path.join(HERE, "sample-ks.cfg")) as f:
            ks = f.read()
        ks = (
            ks.replace("@USER_PUBKEY@", user_pub)
            .replace("@HOST_KEY@", host_priv)
            .replace("@HOST_PUBKEY@", host_pub)
        )
        oemdrv = os.path.join(work, "oemdrv.iso")
        mkiso.make_iso(oemdrv, "OEMDRV", {"ks.cfg": ks.encode()})

        # kernel + initrd out of the ISO, exactly as oslab does for CentOS
        cd = pycdlib.PyCdlib()
        cd.open(iso)
        label = cd.pvd.volume_identifier.decode().strip()
        check(label == "TESTLINUX", f"ISO volume label is {label!r}")
        kernel = os.path.join(work, "vmlinuz")
        initrd = os.path.join(work, "initrd.img")
        cd.get_file_from_iso(kernel, rr_path="/images/pxeboot/vmlinuz")
        cd.get_file_from_iso(initrd, rr_path="/images/pxeboot/initrd.img")
        cd.close()

        disk = os.path.join(work, "disk.qcow2")
        extra = os.path.join(work, "extra.qcow2")
        for p, size in ((disk, args.disk_size), (extra, "1G")):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", p, size], check=True)
        port = free_port()

        # --- install ---
        install_args = [
            *base_args(work, disk, extra, port),
            "-kernel",
            kernel,
            "-initrd",
            initrd,
            "-append",
            CMDLINE,
            "-device",
            "virtio-scsi-pci,id=scsi0",
            "-drive",
            f"if=none,id=cd0,file={iso},format=raw,media=cdrom,readonly=on",
            "-device",
            "scsi-cd,bus=scsi0.0,drive=cd0",
            "-drive",
            f"if=none,id=cd1,file={oemdrv},format=raw,media=cdrom,readonly=on",
            "-device",
            "scsi-cd,bus=scsi0.0,drive=cd1",
        ]
        say("install boot (TCG) ...")
        q = Qemu(work, "install", install_args)
        running.append(q)
        rc = q.wait(600)
        times["install (boot to power off)"] = time.monotonic() - q.started
        q.stop()
        log = tail(q.log, 400)
        if rc is None:
            raise Fail("installer did not power off within 600 s:\n" + tail(q.log))
        check(
            "installation complete" in log and "testlinux-install: FAILED:" not in log,
            "installer completed and powered off",
        )
        check(
            "%post 3 FAILED with exit status 3" in log,
            "failing %post is reported with its exit status",
        )
        check("ignored: timezone" in log, "unknown commands are logged as ignored")

        # --- first boot from disk ---
        say("disk boot (TCG) ...")
        q = Qemu(work, "boot1", [*base_args(work, disk, extra, port), "-boot", "c"])
        running.append(q)
        ready = q.wait_console("testlinux: ready", 120)
        if ready:
            times["disk boot to 'testlinux: ready' on the console"] = ready
        c = ssh_connect(port, host_pub, user_key, time.monotonic() + 180, q)
        times["disk boot to SSH"] = time.monotonic() - q.started
        check(True, f"SSH with the pinned host key after {times['disk boot to SSH']:.1f} s")
        check(run(c, "hostname").strip() == HOSTNAME, "hostname")
        check("tmpfs" in run(c, "grep ' /dev/shm ' /proc/mounts"), "/dev/shm is tmpfs")
        addrs = run(c, "ip -4 addr show")
        check("10.0.2.15/24" in addrs, "management NIC has 10.0.2.15/24")
        check("default via 10.0.2.2" in run(c, "ip route"), "default route via 10.0.2.2")
        prov = run(
            c,
            f"for i in /sys/class/net/*; do "
            f'[ "$(cat $i/address)" = {PROV_MAC} ] && echo ${{i##*/}}; done; true',
        ).strip()
        check(
            prov
            and "UP" in run(c, f"ip link show {prov}")
            and "inet " not in run(c, f"ip -4 addr show {prov}"),
            f"provider NIC {prov} is up with no IPv4 address",
        )
        check("nameserver 10.0.2.3" in run(c, "cat /etc/resolv.conf"), "resolv.conf")
        check("smoke-node" in run(c, "cat /etc/hosts"), "/etc/hosts from %post")
        check(
            run(c, "cat /root/post1.txt /root/post2.txt").count("ran") == 2,
            "chroot and --nochroot %post ran",
        )
        run(c, "test -f /root/ks-post.log")
        check(True, "%post --log file written")
        mid = run(c, "cat /etc/machine-id").strip()
        check(len(mid) == 32, f"machine-id {mid}")
        shadow = run(c, "awk -F: '$1==\"root\"{print $2}' /etc/shadow")
        check(shadow.startswith("$6$testlinux$"), "root password hash from rootpw --iscrypted")
        check(
            "ext4" in run(c, "grep ' / ' /proc/mounts")
            and "rw" in run(c, "grep ' / ' /proc/mounts"),
            "root is writable ext4",
        )
        vdb = "dd if=/dev/vdb bs=512 count=2048 2>/dev/null | tr -d '\\000' | wc -c"
        check(run(c, vdb).strip() == "0", "extra disk vdb untouched")
        tools = (
            "sh cat stat chown chmod mkdir sha256sum date hwclock sync mount ip ps kill "
            "sleep poweroff grep sed awk tee cut"
        )
        run(
            c,
            f"for t in {tools}; do "
            "command -v $t >/dev/null || { echo missing $t; exit 1; }; done",
        )
        check(True, "busybox tools on PATH")

        token = os.urandom(8).hex()
        run(c, f"echo {token} > /root/persist.txt && sync")
        sftp = c.open_sftp()
        payload = os.urandom(200_000)
        sftp.putfo(io.BytesIO(payload), "/root/sftp-test.bin")
        sftp.chmod("/root/sftp-test.bin", 0o640)
        sftp.chown("/root/sftp-test.bin", 65534, 65534)
        st = sftp.stat("/root/sftp-test.bin")
        check(
            st.st_size == len(payload)
            and (st.st_mode & 0o777) == 0o640
            and st.st_uid == 65534
            and st.st_gid == 65534,
            "SFTP put + chmod + chown + stat",
        )
        buf = io.BytesIO()
        sftp.getfo("/root/sftp-test.bin", buf)
        check(buf.getvalue() == payload, "SFTP get")
        sftp.close()
        c.close()

        # --- ACPI power button ---
        t = time.monotonic()
        q.qmp("system_powerdown")
        rc = q.wait(120)
        times["ACPI power button to power off"] = time.monotonic() - t
        check(rc is not None, "guest powered off on the ACPI power button")
        q.stop()
        check("root filesystem is clean" in tail(q.log, 50), "clean shutdown logged")

        # --- second boot: persistence ---
        q = Qemu(work, "boot2", [*base_args(work, disk, extra, port), "-boot", "c"])
        running.append(q)
        c = ssh_connect(port, host_pub, user_key, time.monotonic() + 180, q)
        times["second disk boot to SSH"] = time.monotonic() - q.started
        check(run(c, "cat /root/persist.txt").strip() == token, "file in /root survived a reboot")
        check(
            run(c, "stat -c '%a %u:%g' /root/sftp-test.bin").strip() == "640 65534:65534",
            "SFTP file attributes survived a reboot",
        )
        dmesg = run(c, "dmesg")
        check("recovery complete" not in dmesg, "no ext4 journal recovery needed (clean unmount)")
        c.exec_command("poweroff")
        c.close()
        check(q.wait(120) is not None, "poweroff over SSH")
        q.stop()

        # --- a failing re-install must leave a disk that does not boot ---
        bad = ks.replace(PROV_MAC, "52:54:00:00:00:99")
        mkiso.make_iso(oemdrv + ".bad", "OEMDRV", {"ks.cfg": bad.encode()})
        fail_args = [a.replace(oemdrv, oemdrv + ".bad") for a in install_args]
        q = Qemu(work, "install-fail", fail_args)
        running.append(q)
        rc = q.wait(300)
        times["failing install (boot to power off)"] = time.monotonic() - q.started
        q.stop()
        log = tail(q.log, 400)
        check(
            rc is not None and "testlinux-install: FAILED: network" in log,
            "failing install reports FAILED and powers off",
        )
        q = Qemu(work, "boot-fail", [*base_args(work, disk, extra, port), "-boot", "c"])
        running.append(q)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "not a bootable disk" not in tail(q.log):
            time.sleep(0.5)
        check("not a bootable disk" in tail(q.log), "disk is not bootable after a failed install")
        q.stop()
        ok = True
    except (Fail, subprocess.CalledProcessError) as exc:
        say(f"FAILED: {exc}")
        for q in running:
            say(f"--- tail of {q.log}")
            print(tail(q.log), flush=True)
    finally:
        for q in running:
            q.stop()
        say("timings:")
        for k, v in times.items():
            say(f"  {k}: {v:.1f} s")
        if ok and not (args.keep or args.workdir):
            shutil.rmtree(work, ignore_errors=True)
        elif not args.workdir:
            say(f"kept {work}")
    say("PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
