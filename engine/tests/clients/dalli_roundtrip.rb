# Ruby's dalli 3.0 (it speaks only the binary protocol) against one server: HOST:PORT.
# Run by engine/tests/binary_clients.rs; prints "ok" when every check passed.
require "dalli"

def check(cond, what)
  raise "failed: #{what}" unless cond
end

addr = ARGV[0]
c = Dalli::Client.new(addr, raw: true, socket_timeout: 5)
check(c.flush, "flush first")

check(c.set("greeting", "hello"), "set")
check(c.get("greeting") == "hello", "get")
check(c.get("missing").nil?, "miss")
big = "z" * 600_000
check(c.set("big", big), "big set")
check(c.get("big") == big, "big get")

keys = (0...1000).map { |i| "multi:#{i}" }
keys.each_with_index { |k, i| c.set(k, "value #{i}") }
got = c.get_multi(*(keys + ["multi:missing"]))
check(got.size == 1000, "get_multi size #{got.size}")
keys.each_with_index { |k, i| check(got[k] == "value #{i}", "get_multi #{k}") }

check(!c.add("greeting", "again"), "add existing")
check(c.add("fresh", "new"), "add new")
check(c.replace("fresh", "newer"), "replace")
c.replace("nowhere", "x") # dalli 3.0.6 answers 0 here, not false
check(c.get("nowhere").nil?, "replace missing")

check(c.incr("counter", 1, nil, 10) == 10, "incr creates at the default")
check(c.incr("counter", 5) == 15, "incr")
check(c.decr("counter", 20) == 0, "decr floors at 0")

check(c.cas("fresh") { |v| v + "?" }, "cas")
check(c.get("fresh") == "newer?", "cas applied")

check(c.touch("fresh", 100), "touch")
check(c.delete("fresh"), "delete")
check(c.get("fresh").nil?, "deleted")

stats = c.stats
check(stats.size == 1 && stats.values.first["cmd_get"].to_i > 1000, "stats #{stats}")
check(c.flush, "flush")
check(c.get(keys[0]).nil?, "flushed")
puts "ok"
