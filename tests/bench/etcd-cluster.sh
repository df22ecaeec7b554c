#!/usr/bin/env bash
# Start/stop a local 3-member etcd cluster for benchmarking (loopback only).
#
#   tests/bench/etcd-cluster.sh start    # start 3 members, wait until all are healthy
#   tests/bench/etcd-cluster.sh stop     # stop the members by the PIDs recorded at start
#   tests/bench/etcd-cluster.sh status   # endpoint status/health table
#   tests/bench/etcd-cluster.sh endpoints  # print the client endpoint list (comma separated)
#
# Environment:
#   ETCD_BENCH_DIR   work dir for data dirs, logs and pid files (default /tmp/etcd-bench)
#   ETCD_BIN         etcd binary    (default: etcd from PATH)
#   ETCDCTL_BIN      etcdctl binary (default: etcdctl from PATH)
#
# Members: m1..m3, clients on 127.0.0.1:23791-23793, peers on 127.0.0.1:23801-23803.
# Durability is etcd's default (WAL fsync on every commit); nothing is tuned.
# The data dirs are wiped on `start` so every run begins from an empty cluster.
set -euo pipefail

DIR=${ETCD_BENCH_DIR:-/tmp/etcd-bench}
ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}
N=3
HOST=127.0.0.1
CPORT0=23790   # member i listens for clients on CPORT0+i
PPORT0=23800   # member i listens for peers   on PPORT0+i

endpoints() {
  local i out=""
  for i in $(seq 1 $N); do out+="${out:+,}http://$HOST:$((CPORT0 + i))"; done
  echo "$out"
}

initial_cluster() {
  local i out=""
  for i in $(seq 1 $N); do out+="${out:+,}m$i=http://$HOST:$((PPORT0 + i))"; done
  echo "$out"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

do_stop() {
  local i pid stopped=0
  for i in $(seq 1 $N); do
    [ -f "$DIR/m$i.pid" ] || continue
    pid=$(cat "$DIR/m$i.pid")
    if pid_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      stopped=1
    fi
  done
  # wait up to 10 s for each recorded PID, then SIGKILL that PID only
  for i in $(seq 1 $N); do
    [ -f "$DIR/m$i.pid" ] || continue
    pid=$(cat "$DIR/m$i.pid")
    for _ in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.1; done
    if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$DIR/m$i.pid"
  done
  [ $stopped = 1 ] && echo "etcd cluster stopped" || echo "etcd cluster: nothing running"
}

do_start() {
  local i pid
  for i in $(seq 1 $N); do
    if [ -f "$DIR/m$i.pid" ] && pid_alive "$(cat "$DIR/m$i.pid")"; then
      echo "member m$i already running (pid $(cat "$DIR/m$i.pid")); run '$0 stop' first" >&2
      exit 1
    fi
  done
  mkdir -p "$DIR"
  for i in $(seq 1 $N); do
    rm -rf "$DIR/m$i.etcd"
    local curl="http://$HOST:$((CPORT0 + i))" purl="http://$HOST:$((PPORT0 + i))"
    # setsid: own process group, so the shell's job control/signals do not reach it
    setsid "$ETCD_BIN" \
      --name "m$i" \
      --data-dir "$DIR/m$i.etcd" \
      --listen-client-urls "$curl" --advertise-client-urls "$curl" \
      --listen-peer-urls "$purl" --initial-advertise-peer-urls "$purl" \
      --initial-cluster "$(initial_cluster)" \
      --initial-cluster-token etcd-bench \
      --initial-cluster-state new \
      --logger zap --log-outputs stderr --log-level warn \
      </dev/null >"$DIR/m$i.log" 2>&1 &
    pid=$!
    echo "$pid" >"$DIR/m$i.pid"
  done
  # wait until every member answers a linearizable health check (needs a leader)
  local eps; eps=$(endpoints)
  for _ in $(seq 1 150); do
    for i in $(seq 1 $N); do
      if ! pid_alive "$(cat "$DIR/m$i.pid")"; then
        echo "member m$i exited during start-up; log:" >&2
        tail -20 "$DIR/m$i.log" >&2
        do_stop >/dev/null
        exit 1
      fi
    done
    if "$ETCDCTL_BIN" --endpoints="$eps" --dial-timeout=1s --command-timeout=2s \
        endpoint health >/dev/null 2>&1; then
      echo "etcd cluster healthy: $eps (dir $DIR, pids $(cat "$DIR"/m*.pid | tr '\n' ' '))"
      return 0
    fi
    sleep 0.2
  done
  echo "etcd cluster did not become healthy within 30 s" >&2
  "$ETCDCTL_BIN" --endpoints="$eps" endpoint health >&2 || true
  do_stop >/dev/null
  exit 1
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status)
    "$ETCDCTL_BIN" --endpoints="$(endpoints)" -w table endpoint status
    "$ETCDCTL_BIN" --endpoints="$(endpoints)" endpoint health ;;
  endpoints) endpoints ;;
  *) echo "usage: $0 start|stop|status|endpoints" >&2; exit 2 ;;
esac
