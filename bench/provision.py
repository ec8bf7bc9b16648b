"""Wall time of `oslab up --stage provision` for 1 node and for 3 nodes, in one run.

The ratio of the 3-node time to three times the 1-node time shows what the parallel install
buys: below 1 means the nodes install side by side rather than one after another.
"""

from __future__ import annotations

from common import BenchLab, guest_iso


def main() -> None:
    guest_iso()
    times = {}
    for count, subnet in ((1, 201), (3, 202)):
        lab = BenchLab(count, subnet)
        try:
            times[count], _ = lab.oslab("up", "--stage", "provision")
        finally:
            lab.destroy()
        print(f"up --stage provision, {count} node(s): {times[count]:.1f} s", flush=True)
    ratio = times[3] / (3 * times[1])
    print(f"ratio 3-node / (3 x 1-node): {ratio:.2f}")


if __name__ == "__main__":
    main()
