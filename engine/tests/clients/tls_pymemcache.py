"""pymemcache over TLS (Python's ssl, i.e. OpenSSL, as the client) against one server started
with -Z: MODE CERT_DIR HOST:PORT.

Run by engine/tests/tls_clients.rs; prints "ok" when every check passed. Modes:
  basic   TLS 1.3 and TLS 1.2 clients that verify the server against CERT_DIR/ca.pem: set, get,
          a 300 KB value (many records each way), a 1000-key multi-get (a ~100 KB get line),
          noreply sets pipelined into few records, gets/cas, incr, delete, stats
  mtls    the server requires a client certificate (ssl_verify_mode=2): a client without one
          is refused, one with CERT_DIR/client.pem is served, and the refusal is counted in
          ssl_handshake_errors
  https   HOST:PORT is the HTTP port of the same server: a REST PUT and GET over HTTPS
          (Python's http.client), the key then read over memcached TLS at the memcached
          address (MODE CERT_DIR MEMCACHED_ADDR HTTP_ADDR), and a plain-HTTP request to the HTTPS port gets no HTTP answer
"""
import os
import ssl
import sys

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheUnexpectedCloseError

mode, certs, addr = sys.argv[1], sys.argv[2], sys.argv[-1]
host, port = addr.rsplit(":", 1)
server = (host, int(port))


def context(max_version=None, client_cert=False):
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    if max_version is not None:
        ctx.maximum_version = max_version
    if client_cert:
        ctx.load_cert_chain(os.path.join(certs, "client.pem"), os.path.join(certs, "client.key"))
    return ctx


def client(ctx):
    return Client(server, timeout=10, tls_context=ctx)


def exercise(c, tag):
    assert c.set(tag + "k", b"v1") is True
    assert c.get(tag + "k") == b"v1"
    big = os.urandom(300 * 1000)
    assert c.set(tag + "big", big) is True
    assert c.get(tag + "big") == big
    keys = ["%s%097d" % (tag, i) for i in range(1000)]
    values = {k: ("value-%d" % i).encode() for i, k in enumerate(keys)}
    assert c.set_many(values, noreply=True) == []
    got = c.get_many(keys + [tag + "missing"])
    assert got == values, (len(got), len(values))
    value, cas = c.gets(tag + "k")
    assert value == b"v1"
    assert c.cas(tag + "k", b"v2", cas) is True
    assert c.cas(tag + "k", b"v3", cas) is False
    assert c.get(tag + "k") == b"v2"
    assert c.set(tag + "n", b"41") is True
    assert c.incr(tag + "n", 1) == 42
    assert c.delete(tag + "k") is True
    assert c.get(tag + "k") is None
    return c.stats()


if mode == "basic":
    tls13 = client(context())
    stats = exercise(tls13, "a")
    assert stats[b"ssl_handshake_errors"] == 0, stats[b"ssl_handshake_errors"]
    assert tls13.sock.version() == "TLSv1.3", tls13.sock.version()
    tls12 = client(context(max_version=ssl.TLSVersion.TLSv1_2))
    exercise(tls12, "b")
    assert tls12.sock.version() == "TLSv1.2", tls12.sock.version()
    # What one connection wrote is read over the other.
    assert tls13.get("bn") == b"42"
elif mode == "mtls":
    refused = client(context())
    try:
        refused.get("x")
        raise SystemExit("a client without a certificate was served")
    except (ssl.SSLError, OSError, MemcacheUnexpectedCloseError):
        pass
    allowed = client(context(client_cert=True))
    stats = exercise(allowed, "m")
    assert stats[b"ssl_handshake_errors"] >= 1, stats[b"ssl_handshake_errors"]
elif mode == "https":
    import http.client
    import socket

    web = http.client.HTTPSConnection(host, int(port), timeout=10, context=context())
    web.request("PUT", "/v1/keys/over-https", body=b"secret value")
    r = web.getresponse()
    r.read()
    assert r.status in (200, 201, 204), r.status
    web.request("GET", "/v1/keys/over-https")
    r = web.getresponse()
    assert r.status == 200 and r.read() == b"secret value", r.status
    mc_host, mc_port = sys.argv[3].rsplit(":", 1)
    mc = Client((mc_host, int(mc_port)), timeout=10, tls_context=context())
    assert mc.get("over-https") == b"secret value"
    # Plain HTTP to the HTTPS port: no HTTP answer comes back (a TLS alert, or
    # nothing, then the close).
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionError, socket.timeout):
            pass
        assert not got.startswith(b"HTTP/"), got[:40]
else:
    raise SystemExit("unknown mode " + mode)
print("ok")
