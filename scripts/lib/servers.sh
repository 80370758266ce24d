# Helpers the benchmark scripts share; `source` it from a script that runs from
# the project root.

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (up to 10 s) until something accepts on 127.0.0.1:PORT; exits otherwise.
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): nothing listens on port $1" >&2
  exit 1
}

# Fails with a message when memcached is missing after install-test-deps.sh ran.
require_memcached() {
  bash scripts/install-test-deps.sh
  command -v memcached >/dev/null 2>&1 && return 0
  echo "$(basename "$0"): needs memcached (scripts/install-test-deps.sh could not install it)" >&2
  exit 1
}

# Builds the server and the loadgen, makes the output directory $1 (emptied first when
# $2 is "fresh"), sets LG to the loadgen and stops every server in `pids` on exit.
bench_setup() {
  cargo build --release --locked -p engine -p loadgen
  [[ ${2:-} == fresh ]] && rm -rf "$1"
  mkdir -p "$1"
  LG=target/release/corecache-loadgen
  trap stop_servers EXIT
}

# Kills every process whose pid was added to `pids`; install with
# `trap stop_servers EXIT`.
pids=()
stop_servers() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

# Starts corecache (-t 1 -m 1024), memcached (-t 1 -m 1024) and the loadgen's
# null server, each pinned to CPU $1, on free ports, and waits until all three
# accept. corecache's log goes to $2, the null server's to $3. Sets CC_PORT,
# CC_PID, MC_PORT, MC_PID, NULL_PORT and NULL_PID.
start_servers() {
  local cpu=$1 cc_log=$2 null_log=$3 user=()
  CC_PORT=$(free_port)
  taskset -c "$cpu" target/release/corecache -p "$CC_PORT" -t 1 --cores "$cpu" -m 1024 2>"$cc_log" &
  CC_PID=$!
  pids+=("$CC_PID")
  MC_PORT=$(free_port)
  # memcached refuses to run as root without -u.
  [[ $(id -u) -eq 0 ]] && user=(-u root)
  taskset -c "$cpu" memcached "${user[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -t 1 -m 1024 &
  MC_PID=$!
  pids+=("$MC_PID")
  NULL_PORT=$(free_port)
  taskset -c "$cpu" target/release/corecache-loadgen null-server --listen "127.0.0.1:$NULL_PORT" \
    --cores "$cpu" >"$null_log" 2>&1 &
  NULL_PID=$!
  pids+=("$NULL_PID")
  wait_port "$CC_PORT"
  wait_port "$MC_PORT"
  wait_port "$NULL_PORT"
}

# The median of the numbers on standard input, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# stat_of PORT SECTION NAME: one value of `stats SECTION` (SECTION "" for plain stats;
# 0 when absent).
stat_of() {
  python3 - "$@" <<'PY'
import socket, sys
port, section, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("stats %s\r\n" % section).strip().encode() + b"\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    buf += s.recv(65536)
for line in buf.decode().split("\r\n"):
    f = line.split()
    if len(f) == 3 and f[1] == name:
        print(f[2])
        break
else:
    print(0)
PY
}
