"""`oslab up --from-saved` of a 2-node test-guest lab, against a warm `oslab up --stage
provision` of the same lab (golden base cached, so each node is an overlay and a boot), in one
run. Each is timed ROUNDS times, alternating which goes first, each from a destroyed lab, until
every node answers SSH; the medians and their ratio are printed, with the save's size and the
host's load average.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import BenchLab, guest_iso

ROUNDS = 3


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    guest_iso()
    lab = BenchLab(2, 205, golden=True)
    saves = Path(f"/var/lib/libvirt/images/{lab.name}-saves")
    lab.env["OSLAB_SAVES_DIR"] = str(saves)
    load_start = load()

    def from_saved() -> float:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "oslab", "up", "--from-saved", "bench"],
                              env=lab.env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"up --from-saved failed:\n{proc.stdout}\n{proc.stderr}")
        return time.monotonic() - start

    restored: list[float] = []
    provisioned: list[float] = []
    try:
        lab.oslab("up", "--stage", "provision")  # builds the golden base: later runs are warm
        t_save, _out = lab.oslab("save", "bench")
        size = sum(f.stat().st_size for f in (saves / "bench").rglob("*") if f.is_file())
        for i in range(ROUNDS):
            for which in (("saved", "provision") if i % 2 else ("provision", "saved")):
                lab.oslab("destroy", "--yes")
                if which == "saved":
                    restored.append(from_saved())
                else:
                    provisioned.append(lab.oslab("up", "--stage", "provision")[0])
            print(f"round {i + 1}: up --from-saved {restored[-1]:.1f} s, warm up --stage "
                  f"provision {provisioned[-1]:.1f} s", flush=True)
    finally:
        lab.destroy()
        shutil.rmtree(saves, ignore_errors=True)
    t_saved = statistics.median(restored)
    t_warm = statistics.median(provisioned)
    print(f"oslab save of the running 2-node lab:            {t_save:.1f} s, "
          f"{size / 1e6:.0f} MB")
    print(f"up --from-saved, median of {ROUNDS}:                  {t_saved:.1f} s")
    print(f"warm up --stage provision, median of {ROUNDS}:        {t_warm:.1f} s")
    print(f"ratio up --from-saved / warm provision:          {t_saved / t_warm:.2f}")
    print(f"host: {os.cpu_count()} CPUs, load average {load_start} at the start, "
          f"{load()} at the end")


if __name__ == "__main__":
    main()
