#!/usr/bin/env python3
"""Class rounding of the size-class rules, by arithmetic over the class table.

Builds the chunk sizes as engine/store/src/slab.rs `class_sizes` does (from the smallest
item, `step` bytes apart (4 or 8) below `fine_to`, then the growth factor rounded up to
8, then half a page and a page) and prints, per rule, the class count and the bytes
a chunk wastes over the item it holds: on average and at worst for items of every size
in a range (uniform), and log-uniform over 24 B..64 KiB.

Usage: scripts/size-class-waste.py [HEADER_BYTES]   (default 16: no TTL, no flags)
"""
import bisect
import math
import sys

PAGE = 1 << 20


def r8(x):
    return (x + 7) // 8 * 8


def classes(smallest, factor, fine_to=0, step=8):
    s, out = (smallest + step - 1) // step * step, []
    while s < PAGE // 2:
        out.append(s)
        s = s + step if s < fine_to else max(r8(math.ceil(s * factor)), s + 8)
    return sorted(set(out + [PAGE // 2 // 8 * 8, PAGE]))


def waste(cls, lo, hi, log=False):
    tot = wt = worst = worst_rel = 0
    for n in range(lo, hi + 1):
        c = cls[bisect.bisect_left(cls, n)]
        w = 1.0 / n if log else 1.0
        tot += w * (c - n)
        wt += w
        worst, worst_rel = max(worst, c - n), max(worst_rel, (c - n) / c)
    return tot / wt, worst, worst_rel


hdr = int(sys.argv[1]) if len(sys.argv) > 1 else 16
smallest = hdr + 16  # MIN_KEY_VALUE
lo, hi = hdr + 32 + 50, hdr + 32 + 300  # the mixed workload: 32 B key, 50..300 B value
rules = [
    ("1.08, 8-byte steps while smaller (before)", 1.08, 0, 8),
    ("1.08, 8-byte steps to 200", 1.08, 200, 8),
    ("1.08, 8-byte steps to 256", 1.08, 256, 8),
    ("1.08, 4-byte steps to 256", 1.08, 256, 4),
    ("1.08, 8-byte steps to 512", 1.08, 512, 8),
    ("1.04, 8-byte steps while smaller", 1.04, 0, 8),
]
print(f"header {hdr} B, smallest chunk {smallest} B, mixed items {lo}..{hi} B")
print("| rule | classes | classes the mixed items use | mixed: mean, worst waste | "
      f"{smallest}..256 B: mean | 256..1024 B: mean, worst | log-uniform {smallest} B..64 KiB: mean |")
print("|---|---|---|---|---|---|---|")
for name, f, fine, step in rules:
    c = classes(smallest, f, fine, step)
    used = len({c[bisect.bisect_left(c, n)] for n in range(lo, hi + 1)})
    m, s, l = waste(c, lo, hi), waste(c, smallest, 256), waste(c, 256, 1024)
    g = waste(c, smallest, 65536, log=True)
    print(f"| {name} | {len(c)} | {used} | {m[0]:.2f} B, {m[1]} B ({m[2]*100:.1f}%) | "
          f"{s[0]:.2f} B | {l[0]:.2f} B, {l[2]*100:.1f}% | {g[0]:.1f} B |")
