#!/bin/sh
# Two llama2-servers behind HAProxy on loopback (docs/SERVING.md):
#
#   sh docs/serving/two_servers.sh [model.bin [tokenizer.bin [requests]]]
#
# Starts both servers on free ports and HAProxy in front of them with health
# checks on /health (docs/serving/haproxy.cfg), sends `requests` completions
# (default 8) through it, four at a time, and prints which server answered
# each; then stops server a with SIGTERM and shows that HAProxy takes it out
# and sends the next requests to b. Needs haproxy and curl; run it from the
# repository after `make`, with the models of `make models` by default.
set -eu
model=${1:-models/stories260K.bin}
tokenizer=${2:-models/tok512.bin}
requests=${3:-8}
server=./llama2-server
for tool in haproxy curl "$server"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "two_servers: $tool not found" >&2; exit 1; }
done

dir=$(mktemp -d)
pids=
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Each server on a free port (--port 0): the port is in its ready line.
"$server" "$model" -z "$tokenizer" --port 0 --parallel 2 >"$dir/a.out" 2>"$dir/a.err" &
pid_a=$!
"$server" "$model" -z "$tokenizer" --port 0 --parallel 2 >"$dir/b.out" 2>"$dir/b.err" &
pid_b=$!
pids="$pid_a $pid_b"
port_of() { # name
    i=0
    until grep -q listening "$dir/$1.out" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || { echo "two_servers: server $1 did not start:" >&2; cat "$dir/$1.err" >&2; exit 1; }
        sleep 0.1
    done
    sed -n 's/.*:\([0-9]*\)$/\1/p' "$dir/$1.out"
}
port_a=$(port_of a)
port_b=$(port_of b)

# A free port for HAProxy: the kernel's pick, released just before.
port_lb=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo 18080)
sed -e "s/@LB@/$port_lb/" -e "s/@A@/$port_a/" -e "s/@B@/$port_b/" "$(dirname "$0")/haproxy.cfg" >"$dir/haproxy.cfg"
haproxy -q -f "$dir/haproxy.cfg" -db &
pids="$pids $!"
echo "servers a (port $port_a) and b (port $port_b) behind HAProxy on http://127.0.0.1:$port_lb"
lb=http://127.0.0.1:$port_lb
i=0
until curl -sf "$lb/health" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || { echo "two_servers: HAProxy does not answer" >&2; exit 1; }
    sleep 0.1
done

# One completion through HAProxy: which server answered, and the text's start.
ask() { # n
    curl -s -D "$dir/head-$1" "$lb/v1/completions" \
        -d "{\"prompt\":\"Once upon a time\",\"max_tokens\":48,\"seed\":$1}" >"$dir/body-$1"
    served=$(tr -d '\r' <"$dir/head-$1" | sed -n 's/^[Xx]-[Ss]erved-[Bb]y: //p')
    text=$(sed -n 's/.*"text":"\([^"]\{0,40\}\).*/\1/p' "$dir/body-$1")
    echo "request $1: server ${served:-?}: $text..."
}
n=1
while [ "$n" -le "$requests" ]; do
    batch=
    for k in 0 1 2 3; do
        if [ $((n + k)) -le "$requests" ]; then
            ask $((n + k)) &
            batch="$batch $!"
        fi
    done
    for pid in $batch; do wait "$pid"; done
    n=$((n + 4))
done

echo "stopping server a (SIGTERM): it finishes its requests, stops listening, HAProxy takes it out"
kill -TERM "$pid_a"
wait "$pid_a" || true
sleep 2.5
for n in 101 102 103; do ask "$n"; done
echo "server b's counters: $(curl -s "http://127.0.0.1:$port_b/metrics" | grep -E '^llama2_requests_(total|finished_total) ' | tr '\n' ' ')"
