# shellcheck shell=bash
# fixture_store.sh - sourced by the image, Helm-less fleet and capacity
# scripts: a signed store holding senior-reviewer 1.0.0 and 1.1.0, releases
# 1 (1.0.0) and 2 (1.1.0), and the keys and keyrings to serve and promote it.
#
#   fixture_store DIR        builds everything under DIR and sets:
#     FX_STORE    the store                FX_KEYRING  every key (the CLI's)
#     FX_RT_KEYRING  what runtimes trust   FX_RM_KEY   a release-manager key
#     FX_SCRIPT   a scripted LLM answer (--llm-script)
#     FX_BODY     an invocation body for senior-reviewer
#   fx_promote CHANNEL RELEASE / fx_rollback CHANNEL RELEASE
#
# Needs AF (the CLI) and AF_SRCDIR (the source tree); returns non-zero with a
# message on stderr when a step fails.

fixture_store() {
	local d=$1 ts b rm r v
	AF=${AF:?AF must point at the agentfactory binary}
	local src=${AF_SRCDIR:?AF_SRCDIR must point at the source tree}
	export AF_POLICIES="$src/policies"
	export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
	export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
	unset AF_STORE AF_KEYRING AF_NOW AF_CHANNEL
	mkdir -p "$d/keys"
	# keyrings are signed by their root key
	"$AF" keygen --role root --out "$d/keys/root" >/dev/null 2>&1 ||
		{ echo "fixture: keygen root failed" >&2; return 1; }
	export AF_ROOT_KEY="$d/keys/root/root.key"
	for k in template-signer:ts builder:b release-manager:rm; do
		"$AF" keygen --role "${k%%:*}" --out "$d/keys/${k#*:}" >/dev/null 2>&1 ||
			{ echo "fixture: keygen ${k%%:*} failed" >&2; return 1; }
	done
	ts="$d/keys/ts/template-signer" b="$d/keys/b/builder" rm="$d/keys/rm/release-manager"
	FX_KEYRING="$d/admin-keyring.json" FX_RT_KEYRING="$d/runtime-keyring.json"
	for kr in "$FX_KEYRING" "$FX_RT_KEYRING"; do
		"$AF" trust add --keyring "$kr" --role template-signer --not-before -30d "$ts.pub" >/dev/null 2>&1 &&
		"$AF" trust add --keyring "$kr" --role builder --not-before -30d "$b.pub" >/dev/null 2>&1 &&
		"$AF" trust add --keyring "$kr" --role release-manager --not-before -30d "$rm.pub" >/dev/null 2>&1 ||
			{ echo "fixture: trust add failed" >&2; return 1; }
	done
	FX_RM_KEY="$rm.key"
	r="$d/repo"
	git init -q "$r" && mkdir -p "$r/templates/bases"
	for f in bases/base-agent bases/base-reviewer senior-reviewer; do
		cp "$src/templates/$f.yaml" "$r/templates/$f.yaml"
	done
	FX_STORE="$d/store"
	for v in 1.0.0 1.1.0; do
		sed -i "s/^version: .*/version: $v/" "$r/templates/senior-reviewer.yaml"
		"$AF" sign --key "$ts.key" $(find "$r/templates" -name '*.yaml') >/dev/null &&
		git -C "$r" add -A && git -C "$r" commit -qm "senior-reviewer $v" &&
		"$AF" build --repo "$r" --rev HEAD --store "$FX_STORE" --keyring "$FX_KEYRING" \
			--builder-key "$b.key" -j 2 >"$d/build.log" 2>&1 ||
			{ echo "fixture: build $v failed" >&2; tail -20 "$d/build.log" >&2; return 1; }
		"$AF" release create --store "$FX_STORE" --keyring "$FX_KEYRING" --key "$FX_RM_KEY" \
			"senior-reviewer@$v" >/dev/null 2>"$d/release.err" ||
			{ echo "fixture: release $v failed: $(cat "$d/release.err")" >&2; return 1; }
	done
	FX_SCRIPT="$d/script.json"
	cat >"$FX_SCRIPT" <<'JSON'
{"responses": [{"role": "assistant", "content": "{\"summary\": \"The retry loop has no upper bound.\", \"findings\": [\"unbounded retry in fetch()\"], \"verdict\": \"changes requested\"}"}]}
JSON
	FX_BODY='{"inputs":{"change":"add a retry loop","focus":"errors"}}'
}

fx_promote() { # CHANNEL RELEASE
	"$AF" promote --store "$FX_STORE" --keyring "$FX_KEYRING" --key "$FX_RM_KEY" \
		--channel "$1" --release "$2" >/dev/null
}

fx_rollback() { # CHANNEL RELEASE
	"$AF" rollback --store "$FX_STORE" --keyring "$FX_KEYRING" --key "$FX_RM_KEY" \
		--channel "$1" --to "$2" >/dev/null
}
