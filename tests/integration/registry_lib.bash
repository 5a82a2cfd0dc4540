# registry_lib.bash - sourced by the registry tests (not a test itself):
# start Debian's docker-registry (Docker Distribution) on a free loopback
# port with a generated config and storage in a temp dir, and stop it.
#
# start_registry DIR [EXTRA_YAML_FILE [SCHEME]]
#   sets REG_PORT, REG_PID, REG_ROOT (the storage root); EXTRA_YAML_FILE is
#   appended to the config (auth:, tls under http: via REG_HTTP_EXTRA).
# Callers keep PIDS (an array) and kill it in their EXIT trap.

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_registry() { # DIR [EXTRA_YAML]
	local dir=$1 extra=${2:-} try port scheme=${REG_SCHEME:-http}
	mkdir -p "$dir/storage"
	for try in 1 2 3 4 5; do
		port=$(free_port)
		{
			echo "version: 0.1"
			echo "log:"
			echo "  level: info"
			echo "  accesslog:"
			echo "    disabled: false"
			echo "storage:"
			echo "  filesystem:"
			echo "    rootdirectory: $dir/storage"
			echo "  delete:"
			echo "    enabled: true"
			echo "http:"
			echo "  addr: 127.0.0.1:$port"
			echo "  secret: test-secret-$RANDOM"
			[ -n "${REG_HTTP_EXTRA:-}" ] && cat "$REG_HTTP_EXTRA"
			[ -n "$extra" ] && cat "$extra"
		} >"$dir/config.yml"
		docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
		REG_PID=$!
		PIDS+=("$REG_PID")
		local i
		for i in $(seq 1 100); do
			if curl -s -o /dev/null ${REG_CURL_OPTS:-} "$scheme://127.0.0.1:$port/v2/" 2>/dev/null; then
				REG_PORT=$port
				REG_ROOT=$dir/storage
				return 0
			fi
			kill -0 "$REG_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	done
	echo "cannot start docker-registry (see $dir/registry.log)" >&2
	tail -20 "$dir/registry.log" >&2
	return 1
}

stop_registry() {
	kill "$REG_PID" 2>/dev/null || true
	wait "$REG_PID" 2>/dev/null || true
}

# The number of blobs in the registry's storage.
registry_blobs() {
	find "$REG_ROOT/docker/registry/v2/blobs" -name data -type f 2>/dev/null | wc -l
}

# The storage path of blob DIGEST (sha256:HEX).
registry_blob_path() {
	local hex=${1#sha256:}
	echo "$REG_ROOT/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

# Flip one byte in the middle of FILE (in place); again to restore it.
# flip_hex FILE: change one hex digit of the last "sha256:" digest in a JSON
# document: still valid JSON (the registry serves it as it is), but its
# digest no longer matches, so only our own digest check can catch it.
flip_hex() {
	python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.rfind(b"sha256:") + 7 + 10
b[i] = ord("0") if b[i] != ord("0") else ord("1")
open(p, "wb").write(bytes(b))
PY
}

flip_byte() {
	python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 1
open(p, "wb").write(bytes(b))
PY
}
