"""pylibmc (libmemcached) in binary mode against one server: HOST:PORT.

Run by engine/tests/binary_clients.rs; prints "ok" when every check passed.
"""
import sys

import pylibmc

addr = sys.argv[1]
c = pylibmc.Client([addr], binary=True, behaviors={"cas": True})
assert c.flush_all()

assert c.set("greeting", "hello")
assert c.get("greeting") == "hello"
assert c.get("missing") is None
big = b"y" * 700_000
assert c.set("big", big)
assert c.get("big") == big

keys = ["multi:%d" % i for i in range(1000)]
assert c.set_multi({k: "value %d" % i for i, k in enumerate(keys)}) == []
got = c.get_multi(keys + ["multi:missing"])
assert len(got) == 1000, len(got)
assert all(got[k] == "value %d" % i for i, k in enumerate(keys))

assert not c.add("greeting", "again")
assert c.add("fresh", "new")
assert c.replace("fresh", "newer")
try:
    c.replace("nowhere", "x")
    raise AssertionError("replace of a missing key succeeded")
except pylibmc.NotFound:
    pass
assert c.get("nowhere") is None
assert c.append("fresh", "!")
assert c.prepend("fresh", "<")
assert c.get("fresh") == "<newer!"

c.set("counter", "10")
assert c.incr("counter", 5) == 15
assert c.decr("counter", 20) == 0

value, cas = c.gets("fresh")
assert value == "<newer!"
assert c.cas("fresh", "swapped", cas)
assert not c.cas("fresh", "stale", cas)
assert c.get("fresh") == "swapped"

assert c.delete("fresh")
assert not c.delete("fresh")
assert c.delete_multi(keys[:10])
assert c.get(keys[0]) is None

stats = dict(c.get_stats())
assert len(stats) == 1, stats
only = list(stats.values())[0]
assert int(only["cmd_get"]) > 1000, only

assert c.flush_all()
assert c.get(keys[500]) is None
print("ok")
