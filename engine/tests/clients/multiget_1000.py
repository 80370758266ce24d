"""A 1000-key multi-get of 100-byte keys through one text-protocol client library
against one server: LIBRARY HOST:PORT (pymemcache, pylibmc, python-memcached).

Run by engine/tests/text_clients.rs; prints "ok" when every key came back. Keys of 100 bytes
make the get line ~101 KB, past the 64 KiB that get lines used to be refused at.
"""
import sys

library, addr = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
keys = ["%0100d" % i for i in range(1000)]
values = {k: ("value-%d" % i).encode() for i, k in enumerate(keys)}

if library == "pymemcache":
    from pymemcache.client.base import Client
    c = Client((host, int(port)), timeout=10)
    c.flush_all()
    assert c.set_many(values) == []
    got = c.get_many(keys + ["missing"])
elif library == "pylibmc":
    import pylibmc
    c = pylibmc.Client([addr])
    c.flush_all()
    assert c.set_multi(values) == []
    got = c.get_multi(keys + ["missing"])
elif library == "python-memcached":
    import memcache
    c = memcache.Client([addr], server_max_key_length=250)
    c.flush_all()
    assert c.set_multi(values) == []
    got = c.get_multi(keys + ["missing"])
else:
    raise SystemExit("unknown library " + library)

got = {k: (v if isinstance(v, bytes) else v.encode() if isinstance(v, str) else v) for k, v in got.items()}
assert len(got) == 1000, len(got)
assert all(got[k] == values[k] for k in keys)
print("ok")
