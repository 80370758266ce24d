"""python-binary-memcached (binary protocol only) against one server: HOST:PORT.

Run by engine/tests/binary_clients.rs; prints "ok" when every check passed.
"""
import sys

import bmemcached

addr = sys.argv[1]
c = bmemcached.Client((addr,))
assert c.flush_all()

assert c.set("greeting", "hello")
assert c.get("greeting") == "hello"
assert c.get("missing") is None
blob = bytes(range(256)) * 40
assert c.set("blob", blob)
assert c.get("blob") == blob
big = b"x" * 500_000
assert c.set("big", big)
assert c.get("big") == big

keys = ["multi:%d" % i for i in range(1000)]
for i, k in enumerate(keys):
    assert c.set(k, "value %d" % i)
got = c.get_multi(keys + ["multi:missing"])
assert len(got) == 1000, len(got)
assert all(got[k] == "value %d" % i for i, k in enumerate(keys))

assert not c.add("greeting", "again")
assert c.get("greeting") == "hello"
assert c.add("fresh", "new")
assert c.replace("fresh", "newer")
assert not c.replace("nowhere", "x")

assert c.incr("counter", 5) == 0  # a binary incr creates a missing counter at 0
assert c.incr("counter", 5) == 5
assert c.decr("counter", 20) == 0

value, cas = c.gets("greeting")
assert value == "hello" and cas
assert c.cas("greeting", "bye", cas)
assert not c.cas("greeting", "stale", cas)
assert c.get("greeting") == "bye"

assert c.delete("greeting")
assert c.get("greeting") is None

stats = c.stats()[addr]
assert int(stats["cmd_get"]) > 1000, stats
assert "curr_items" in stats, stats

assert c.flush_all()
assert c.get("fresh") is None
print("ok")
