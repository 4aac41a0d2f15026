#!/usr/bin/env bash
# Recomputes every worked example of docs/formats.md against REAL artifacts.
#
#   tests/formats/run.sh /path/to/vm-federation
#
# 1. Extracts the doc's ```python blocks (tests/formats/extract.py): vmcheck.py and the
#    check_*.py / peer_proof.py scripts an outsider runs.
# 2. Makes artifacts with the binary only, the README's way: two meshes (alpha, beta) on
#    loopback (the embedded defaults: 127.0.0.1, ports picked by the OS), peers added by hand,
#    federated at trust level 3 over Compliance (so they witness AND cross-anchor each other),
#    receipts appended with `scroll append`, `anchor now`, bounded waits until each side
#    holds the witness events; proofs from `scroll proof` (inclusion through the running node,
#    anchored; consistency and unanchored inclusion offline) and `anchor peer-proof`.
#    A third mesh, gamma, anchors through an RFC 3161 TSA (tests/formats/tsa.py: `openssl ts`
#    on loopback) and federates with alpha at level 2, for the rfc3161 anchor of §6.
#    Then alpha's operator rewrites alpha's Compliance history (its files deleted and
#    different receipts appended with `scroll append`, twice): beta records real
#    `fed_discrepancy` receipts with evidence.
# 3. Runs every extracted script on the matching artifacts (each must exit 0) and, per
#    script family, on copies with one character or integer changed (each must fail, with
#    the expected error). Also: vmcheck.py's tree functions against the RFC 6962 vectors
#    (tests/formats/rfc6962.py) and the examples of docs/cli-json.md that §1 and §3 cite.
#
# Needs python3 (blake3 and cryptography are pip-installed if missing) and openssl. Runs
# only the binary given, the scripts here and openssl; kills only the processes it started.
#
# Environment: FORMATS_WAIT_SECS (default 60) bounds every wait; FORMATS_KEEP=1 keeps the
# work directory (it is always kept, and named, on failure).
set -Eeuo pipefail
trap 'echo "FAIL: line $LINENO: \`$BASH_COMMAND\` exited $?" >&2' ERR

if [[ $# -ne 1 ]]; then
  echo "usage: $0 /path/to/vm-federation" >&2
  exit 2
fi
B=$(realpath "$1")
[[ -x $B ]] || { echo "$B: not an executable" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WAIT=${FORMATS_WAIT_SECS:-60}
unset VM_FEDERATION_DATA_DIR VM_FEDERATION_LOG_FORMAT
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vm-formats.XXXXXX")
S=$WORK/scripts      # the extracted scripts
A=$WORK/artifacts    # what the binary wrote, copied out, and the flipped copies
mkdir -p "$A"

declare -A PID=()    # running nodes we started: name -> pid (and "tsa")
declare -A STARTS=() # name -> number of starts (log file suffix)
POSITIVE=0
LASTPEER=()
DISC=()
NEGATIVE=0
OK=0

cleanup() {
  local rc=$?
  for name in "${!PID[@]}"; do
    kill -TERM "${PID[$name]}" 2>/dev/null || true
  done
  for name in "${!PID[@]}"; do
    local p=${PID[$name]} i
    for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [[ $OK != 1 ]]; then
    echo "FAILED (exit $rc); logs and artifacts kept in $WORK" >&2
  elif [[ ${FORMATS_KEEP:-0} == 1 ]]; then
    echo "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.err; do
    [[ -e $f ]] || continue
    echo "----- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}

section() { printf '\n== %s\n' "$*"; }

# A CLI call, bounded; its stdout is the output.
cli() { timeout 60 "$B" "$@"; }

# `jtrue EXPR`: the JSON on stdin as `d`; exit 0 iff the Python expression is truthy.
jtrue() { python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"; }
# `jget EXPR`: the JSON on stdin as `d`; prints the expression (strings bare, the rest as JSON).
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r))' "$1"; }

# `wait_for WHAT CMD...`: runs CMD every half second until it succeeds; fails after $WAIT s.
wait_for() {
  local what=$1 end=$((SECONDS + WAIT))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || fail "timed out after ${WAIT}s waiting for $what"
    sleep 0.5
  done
  echo "   ($what)"
}

# `check SCRIPT ARGS...`: runs an extracted script; it must exit 0.
check() {
  local script=$1 out
  shift
  if ! out=$(cd "$WORK" && python3 "$S/$script" "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "$script ${*#"$WORK"/} exited non-zero on a real artifact"
  fi
  POSITIVE=$((POSITIVE + 1))
  echo "ok   $script $(short "$@")"
  printf '%s\n' "$out" | cut -c1-200 | sed 's/^/       /'
}

# `refuse WHAT PATTERN SCRIPT ARGS...`: the script must exit non-zero, and its output
# must match PATTERN (an extended regex): it failed for the reason meant, not another.
refuse() {
  local what=$1 pattern=$2 script=$3
  shift 3
  refuse_cmd "$what" "$pattern" python3 "$S/$script" "$@"
}
# `refuse_cmd WHAT PATTERN CMD...`: the same for any command (openssl).
refuse_cmd() {
  local what=$1 pattern=$2 out rc=0 name
  shift 2
  name=$(basename "${1}")
  [[ $name == python3 ]] && name=$(basename "$2")
  out=$(cd "$WORK" && "$@" 2>&1) || rc=$?
  if [[ $rc == 0 ]]; then
    printf '%s\n' "$out" >&2
    fail "$name accepted a tampered artifact ($what)"
  fi
  if ! grep -qE "$pattern" <<<"$out"; then
    printf '%s\n' "$out" >&2
    fail "$name refused $what, but not with /$pattern/"
  fi
  NEGATIVE=$((NEGATIVE + 1))
  echo "ok   refused: $what -> $name exit $rc: $(grep -E "$pattern" <<<"$out" | tail -n 1 | cut -c1-110)"
}

# Arguments with the work directory cut off and keys shortened, for the log.
short() {
  local a out=()
  for a in "$@"; do
    a=${a#"$WORK"/}
    [[ $a == *ed25519:z6Mk* ]] && a="${a%%ed25519:z6Mk*}ed25519:z6Mk…"
    out+=("$a")
  done
  echo "${out[*]}"
}

# `flip IN OUT PATH [--line N]`: a copy with one value changed (tests/formats/flip.py).
flip() { (cd "$WORK" && PYTHONPATH=$S python3 "$HERE/flip.py" "$@") | sed 's/^/     /'; }

# Node control ------------------------------------------------------------------------------

start_node() {
  local name=$1 n
  n=$((${STARTS[$name]:-0} + 1))
  STARTS[$name]=$n
  RUST_LOG=info NO_COLOR=1 "$B" node run --data-dir "$WORK/$name" \
    >"$WORK/$name.$n.out" 2>"$WORK/$name.$n.err" </dev/null &
  PID[$name]=$!
  local end=$((SECONDS + WAIT))
  until grep -q '^listening on /ip4/127.0.0.1/tcp/' "$WORK/$name.$n.out" 2>/dev/null; do
    kill -0 "${PID[$name]}" 2>/dev/null || fail "$name exited before listening"
    ((SECONDS < end)) || fail "$name did not listen within ${WAIT}s"
    sleep 0.2
  done
  TCP[$name]=$(grep -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' "$WORK/$name.$n.out" | head -n 1)
  echo "   $name running (pid ${PID[$name]}) on ${TCP[$name]}"
}

stop_node() {
  local name=$1 p=${PID[$1]} end=$((SECONDS + WAIT))
  kill -TERM "$p"
  while kill -0 "$p" 2>/dev/null; do
    ((SECONDS < end)) || fail "$name did not exit within ${WAIT}s of SIGTERM"
    sleep 0.2
  done
  wait "$p" 2>/dev/null || true
  unset "PID[$name]"
  echo "   $name stopped (SIGTERM)"
}

declare -A TCP=() KEY=()
status() { cli status --data-dir "$WORK/$1" --json; }
fed() { echo "$WORK/$1/receipts/federation/federation_events.jsonl"; }

# `lines FILE TYPE PREFIX`: each receipt of TYPE in scroll FILE copied to PREFIX.N.json
# (N = sequence); prints the files.
lines() {
  python3 - "$@" <<'PY'
import json, sys
path, kind, prefix = sys.argv[1:]
for n, line in enumerate(open(path, "rb").read().split(b"\n")[:-1]):
    if json.loads(line)["type"] == kind:
        out = f"{prefix}.{n}.json"
        open(out, "wb").write(line + b"\n")
        print(out)
PY
}

# Does scroll FILE hold a receipt of TYPE for which the Python expression (on `r`) holds?
has_receipt() {
  python3 - "$@" <<'PY'
import json, sys
path, kind, cond = sys.argv[1:]
for line in open(path, "rb").read().split(b"\n")[:-1]:
    r = json.loads(line)
    if r["type"] == kind and eval(cond):
        sys.exit(0)
sys.exit(1)
PY
}
seq_of() { local b=${1%.json}; echo "${b##*.}"; } # PREFIX.N.json -> N
count_receipts() {
  python3 -c 'import json,sys; print(sum(json.loads(l)["type"]==sys.argv[2] for l in open(sys.argv[1],"rb").read().split(b"\n")[:-1]))' "$1" "$2"
}

witnessed() { # ON PEER SIZE: ON has witnessed PEER's Compliance at SIZE, verified
  status "$1" | jtrue "any(w['peer']=='did:vm:mesh:$2' and w['scroll'].lower()=='compliance' and w['size']==$3 and w['result']=='verified' for w in d['witness']['witnessed'])"
}
attested() { # ON BY SIZE: ON holds BY's attestation of ON's Compliance at SIZE
  status "$1" | jtrue "any(a['by']=='did:vm:mesh:$2' and a['size']==$3 and a['result']=='verified' for a in d['witness']['attested_by_peers'])"
}
witness_event_on() { # FILE-OF MESH, WITNESSED, SIZE: a fed_witness_event in MESH's Federation scroll
  has_receipt "$(fed "$1")" fed_witness_event "r['witnessed_mesh']=='did:vm:mesh:$2' and r['witnessed_size']==$3"
}
cross_anchor_on() { # ANCHORING ANCHORED SIZE
  has_receipt "$(fed "$1")" fed_cross_anchor "r['anchored_mesh']=='did:vm:mesh:$2' and r['anchored_size']==$3"
}
proposal_open() { # ON ID
  cli proposals list --data-dir "$WORK/$1" --json | jtrue "any(p['proposal_id']=='$2' and p['status']['state']=='open' for p in d)"
}
agreement_active() { # ON PEER LEVEL
  cli agreements list --data-dir "$WORK/$1" --json | jtrue "any(a['status']['state']=='active' and a['trust_level']==$3 and 'did:vm:mesh:$2' in a['parties'] for a in d)"
}

# ==========================================================================================
section "python dependencies"
if ! python3 -c 'import blake3, cryptography' 2>/dev/null; then
  echo "   installing blake3 and cryptography with pip"
  python3 -m pip install --quiet blake3 cryptography
fi
python3 -c 'import blake3, cryptography; print("   blake3", blake3.__version__, "cryptography", cryptography.__version__)'

section "extract the scripts of docs/formats.md"
python3 "$HERE/extract.py" "$S" | sed 's/^/   /'
for f in vmcheck.py check_signed.py check_scroll.py check_witness_event.py check_discrepancy.py check_notice.py \
  check_checkpoint.py peer_proof.py check_receipt_proof.py check_consistency.py; do
  [[ -f $S/$f ]] || fail "docs/formats.md no longer has $f (update tests/formats/run.sh)"
done
echo "   binary: $B ($("$B" --version))"

section "vmcheck.py's tree functions against the RFC 6962 vectors (SHA-256 swapped in)"
(cd "$WORK" && PYTHONPATH=$S python3 "$HERE/rfc6962.py" "$REPO/receipts/tests/it/merkle.rs") | sed 's/^/   /'
POSITIVE=$((POSITIVE + 1))

# ==========================================================================================
section "an RFC 3161 TSA on loopback (tests/formats/tsa.py, openssl ts -reply)"
command -v openssl >/dev/null || fail "openssl is needed (the TSA, and §6's openssl ts -verify)"
python3 "$HERE/tsa.py" "$WORK/tsa" >"$WORK/tsa.out" 2>"$WORK/tsa.err" </dev/null &
PID[tsa]=$!
end=$((SECONDS + WAIT))
until grep -q '^tsa on ' "$WORK/tsa.out" 2>/dev/null; do
  kill -0 "${PID[tsa]}" 2>/dev/null || fail "the TSA exited: $(cat "$WORK/tsa.err")"
  ((SECONDS < end)) || fail "the TSA did not start within ${WAIT}s"
  sleep 0.2
done
TSA_URL=$(sed -n 's/^tsa on //p' "$WORK/tsa.out")
echo "   TSA at $TSA_URL, CA certificate $WORK/tsa/ca.pem"

section "three meshes on loopback over libp2p (README walkthrough): alpha-beta at level 3, alpha-gamma at level 2"
for m in alpha beta gamma; do
  cli init --data-dir "$WORK/$m" --mesh "$m" | sed 's/^/   /'
  # Anchor cycles on demand only (`anchor now`), as the e2e tests do.
  printf '\n[anchor]\ninterval_secs = 86400\n' >>"$WORK/$m/config.toml"
done
# gamma anchors through the TSA; alpha (its witness) and gamma trust the TSA's CA.
printf 'backend = "rfc3161"\ntsa_url = "%s"\n' "$TSA_URL" >>"$WORK/gamma/config.toml"
for m in alpha gamma; do printf '\n[witness]\ntsa_trust = ["%s"]\n' "$WORK/tsa/ca.pem" >>"$WORK/$m/config.toml"; done
for m in alpha beta gamma; do start_node "$m"; done
for m in alpha beta gamma; do
  KEY[$m]=$(status "$m" | jget "d['public_key']")
  echo "   $m key ${KEY[$m]}"
done
add_peer() { cli peers add --data-dir "$WORK/$1" --mesh "did:vm:mesh:$2" --public-key "${KEY[$2]}" --address "${TCP[$2]}" >/dev/null; }
add_peer alpha beta; add_peer beta alpha; add_peer alpha gamma; add_peer gamma alpha
echo "   peers added: alpha <-> beta, alpha <-> gamma"

# Receipts that exercise RFC 8785: non-ASCII and control characters in strings, quotes and
# backslashes, nested objects, and member names whose UTF-16 order differs from their code
# point order ("😀" is a surrogate pair D83D DE00, which sorts before "！" U+FF01).
cat >"$WORK/alpha-1.jsonl" <<'EOF'
{"type":"compliance_check","control":"AC-1","note":"café ☕ \"quoted\" back\\slash\ttab \u0001 \u001f end","n":42,"nested":{"Z":1,"_":[true,false,null],"a":{"b":-7}}}
{"type":"compliance_check","control":"AC-2","😀":"surrogates first","！":"then U+FF01","Ω":"omega"}
{"type":"compliance_check","control":"AC-3","passed":true}
EOF
printf '{"type":"compliance_check","control":"BC-%s","passed":true}\n' 1 2 3 >"$WORK/beta-1.jsonl"
printf '{"type":"compliance_check","control":"GC-%s","passed":true}\n' 1 2 >"$WORK/gamma-1.jsonl"
for m in alpha beta gamma; do
  cli scroll append --data-dir "$WORK/$m" --scroll Compliance --file "$WORK/$m-1.jsonl" | tail -n 1 | sed 's/^/   /'
done
PROPOSAL=$(cli propose --data-dir "$WORK/alpha" --target did:vm:mesh:beta --trust-level 3 \
  --scrolls Compliance --json | jget "[e['proposal_id'] for e in d['events'] if e.get('event')=='sent'][0]")
echo "   alpha proposed $PROPOSAL (trust level 3, Compliance)"
wait_for "beta to receive the proposal" proposal_open beta "$PROPOSAL"
cli proposals accept "$PROPOSAL" --data-dir "$WORK/beta" >/dev/null
wait_for "alpha's agreement with beta to be active" agreement_active alpha beta 3
wait_for "beta's agreement with alpha to be active" agreement_active beta alpha 3
AGREEMENT=$(cli agreements list --data-dir "$WORK/alpha" --json | jget "[a['agreement_id'] for a in d if a['status']['state']=='active' and 'did:vm:mesh:beta' in a['parties']][0]")
echo "   agreement $AGREEMENT active on both"

# First cycle: each witnesses the other's Compliance at 3.
for m in alpha beta; do cli anchor now --data-dir "$WORK/$m" --json >/dev/null; done
wait_for "beta to witness alpha's Compliance at 3" witnessed beta alpha 3
wait_for "alpha to witness beta's Compliance at 3" witnessed alpha beta 3
wait_for "alpha to hold beta's attestation at 3" attested alpha beta 3
wait_for "beta to hold alpha's attestation at 3" attested beta alpha 3
for on in alpha beta; do
  for of in alpha beta; do
    wait_for "a witness event of $of at 3 in $on's Federation scroll" witness_event_on "$on" "$of" 3
  done
done
# Second cycle: level 3, so each puts the root it witnessed into its own batch.
for m in alpha beta; do
  n=$(cli anchor now --data-dir "$WORK/$m" --json | jget "d['cross_anchored']")
  echo "   $m anchor cycle: cross_anchored $n"
done
wait_for "beta's fed_cross_anchor of alpha at 3" cross_anchor_on beta alpha 3
wait_for "alpha's fed_cross_anchor of beta at 3" cross_anchor_on alpha beta 3

# Proofs through the running node: proven against the latest anchored root, anchor added.
cp "$WORK/alpha/ROOT.compliance.txt" "$A/alpha-ROOT.compliance.size3.txt"
cli scroll proof --data-dir "$WORK/alpha" --scroll Compliance --sequence 1 >"$A/alpha-proof-seq1.json"
cli scroll proof --data-dir "$WORK/beta" --scroll Compliance --sequence 0 >"$A/beta-proof-seq0.json"
echo "   scroll proof --sequence 1 (alpha) and --sequence 0 (beta) through the running nodes"

# Alpha grows to 8; witnessed, then cross-anchored at 8 by beta.
printf '{"type":"compliance_check","control":"AC-%s","passed":true}\n' 4 5 6 7 8 >"$WORK/alpha-2.jsonl"
cli scroll append --data-dir "$WORK/alpha" --scroll Compliance --file "$WORK/alpha-2.jsonl" | tail -n 1 | sed 's/^/   /'
cli anchor now --data-dir "$WORK/alpha" --json >/dev/null
wait_for "beta to witness alpha's Compliance at 8" witnessed beta alpha 8
wait_for "alpha to hold beta's attestation at 8" attested alpha beta 8
wait_for "the witness event of alpha at 8 in alpha's Federation scroll" witness_event_on alpha alpha 8
cli anchor now --data-dir "$WORK/beta" --json >/dev/null
wait_for "beta's fed_cross_anchor of alpha at 8" cross_anchor_on beta alpha 8
cli scroll proof --data-dir "$WORK/alpha" --scroll Compliance --sequence 5 >"$A/alpha-proof-seq5.json"
echo "   scroll proof --sequence 5 (alpha, anchored at 8)"

# gamma: level 2 with alpha, anchored through the TSA; alpha witnesses it (checking the token).
P2=$(cli propose --data-dir "$WORK/alpha" --target did:vm:mesh:gamma --trust-level 2 \
  --scrolls Compliance --json | jget "[e['proposal_id'] for e in d['events'] if e.get('event')=='sent'][0]")
wait_for "gamma to receive alpha's proposal" proposal_open gamma "$P2"
cli proposals accept "$P2" --data-dir "$WORK/gamma" >/dev/null
wait_for "alpha's agreement with gamma to be active" agreement_active alpha gamma 2
wait_for "gamma's agreement with alpha to be active" agreement_active gamma alpha 2
cli anchor now --data-dir "$WORK/gamma" --json | jget "'   gamma anchor cycle: backend ' + d['backend']"
wait_for "alpha to witness gamma's Compliance at 2 (rfc3161 anchor)" witnessed alpha gamma 2
wait_for "gamma to hold alpha's attestation at 2" attested gamma alpha 2
wait_for "the witness event of gamma at 2 in gamma's Federation scroll" witness_event_on gamma gamma 2
cli scroll proof --data-dir "$WORK/gamma" --scroll Compliance --sequence 0 >"$A/gamma-proof-seq0.json"
echo "   scroll proof --sequence 0 (gamma, anchored through the TSA)"

# Documents and witness history as the CLI shows them.
cli proposals show "$PROPOSAL" --data-dir "$WORK/alpha" --json >"$A/proposals-show.json"
cli agreements show "$AGREEMENT" --data-dir "$WORK/beta" --json >"$A/agreements-show.json"
cli witness-history --data-dir "$WORK/alpha" --mesh beta --last 1h --json >"$A/witness-history.json"
for m in alpha beta gamma; do status "$m" >"$A/$m-status.json"; done

section "stop the nodes (scrolls closed: checkpoints written)"
for m in alpha beta gamma; do stop_node "$m"; done
for m in alpha beta gamma; do
  for s in compliance federation; do
    cp "$WORK/$m/receipts/$s/${s}_events.jsonl" "$WORK/$m/receipts/$s/${s}_events.checkpoint" "$WORK/$m/ROOT.$s.txt" "$A/" 2>/dev/null ||
      fail "$m: $s files missing"
    mv "$A/${s}_events.jsonl" "$A/$m-${s}_events.jsonl"
    mv "$A/${s}_events.checkpoint" "$A/$m-${s}_events.checkpoint"
    mv "$A/ROOT.$s.txt" "$A/$m-ROOT.$s.txt"
  done
done
# Offline proofs: consistency from every size to the ROOT file's (8), unanchored inclusion.
for k in 1 2 3 4 5 6 7 8; do
  cli scroll proof --data-dir "$WORK/alpha" --scroll Compliance --from-size "$k" >"$A/alpha-consistency-$k-8.json"
done
cli scroll proof --data-dir "$WORK/alpha" --scroll Compliance --from-size 2 --size 3 >"$A/alpha-consistency-2-3.json"
# Offline `--sequence` without `--size`: against the ROOT file's root, or, if the binary takes
# it from the stopped node's state, the latest anchored root with its anchor: checked either way.
cli scroll proof --data-dir "$WORK/alpha" --scroll Compliance --sequence 7 >"$A/alpha-proof-seq7-offline.json"
# With `--size`: a root signed now, never anchored.
cli scroll proof --data-dir "$WORK/alpha" --scroll Compliance --sequence 7 --size 8 >"$A/alpha-proof-seq7-size8.json"
cli scroll proof --data-dir "$WORK/alpha" --scroll Compliance --sequence 2 --size 5 >"$A/alpha-proof-seq2-size5.json"
echo "   scroll proof --from-size 1..8, --from-size 2 --size 3, --sequence 7 [--size 8], --sequence 2 --size 5 (offline)"

# ==========================================================================================
section "§0 encodings: did:key public keys and libp2p peer ids"
for m in alpha beta gamma; do
  python3 - "$S" "$A/$m-status.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
from vmcheck import B58, public_key
st = json.load(open(sys.argv[2]))
raw = public_key(st["public_key"])                    # ed25519:z + base58(0xed 0x01 ++ key)
def b58encode(b):
    n, s = int.from_bytes(b, "big"), ""
    while n: n, r = divmod(n, 58); s = B58[r] + s
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + s
peer = b58encode(b"\x00\x24\x08\x01\x12\x20" + raw)
assert peer == st["peer_id"], (peer, st["peer_id"])
print(f"ok   {st['mesh_id']}: key decodes to 32 bytes; peer id {peer} recomputed from it")
PY
  POSITIVE=$((POSITIVE + 1))
done

# ==========================================================================================
section "§1 signed documents (check_signed.py)"
for m in alpha beta gamma; do
  for s in compliance federation; do check check_signed.py "$A/$m-ROOT.$s.txt" root "${KEY[$m]}"; done
done
check check_signed.py "$A/alpha-ROOT.compliance.size3.txt" root "${KEY[alpha]}"
python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["proposal"], open(sys.argv[2],"w"))' \
  "$A/proposals-show.json" "$A/proposal.json"
check check_signed.py "$A/proposal.json" proposal "${KEY[alpha]}"
python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["history"][0], open(sys.argv[2],"w"))' \
  "$A/proposals-show.json" "$A/response.json"
check check_signed.py "$A/response.json" response "${KEY[beta]}"
python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["agreement"], open(sys.argv[2],"w"))' \
  "$A/agreements-show.json" "$A/agreement.json"
check check_signed.py "$A/agreement.json" agreement -
for m in alpha beta gamma; do
  for f in $(lines "$A/$m-federation_events.jsonl" fed_trust_established "$A/$m-established"); do
    python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["agreement"], open(sys.argv[2],"w"))' "$f" "$f.agreement.json"
    check check_signed.py "$f.agreement.json" agreement -
  done
  ls "$A/$m"-established.*.json >/dev/null 2>&1 || fail "no fed_trust_established receipt in $m's Federation scroll"
done
# Document hashes (§1, "Hashes of documents"): blake3(JCS(whole signed document)); the
# `fed_trust_proposal` receipts name the proposal (sent, received) or the response
# (accepted), and the response's responds_to names the proposal.
python3 - "$S" "$A/proposal.json" "$A/response.json" "$A/alpha-federation_events.jsonl" "$A/beta-federation_events.jsonl" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
from vmcheck import b3, hstr, jcs, load
proposal, response = load(sys.argv[2]), load(sys.argv[3])
hp, hr = hstr(b3(jcs(proposal))), hstr(b3(jcs(response)))
assert response["responds_to"] == hp, ("responds_to", response["responds_to"], hp)
want = {"sent": hp, "received": hp, "accepted": hr}
seen = []
for path in sys.argv[4:]:
    for line in open(path, "rb").read().split(b"\n")[:-1]:
        r = json.loads(line)
        if r["type"] == "fed_trust_proposal" and r["proposal_id"] == proposal["proposal_id"]:
            assert r["document_hash"] == want[r["event"]], (r["event"], r["document_hash"])
            seen.append(r["event"])
assert sorted(seen) == ["accepted", "accepted", "received", "sent"], seen
print(f"ok   document hashes: the proposal {hp[:19]}… (= responds_to; receipts sent, received), "
      f"the response {hr[:19]}… (receipts accepted, both sides)")
PY
POSITIVE=$((POSITIVE + 1))
flip "$A/alpha-ROOT.compliance.txt" "$A/flip-ROOT.txt" root
refuse "ROOT file with one hex digit of root changed" InvalidSignature check_signed.py "$A/flip-ROOT.txt" root "${KEY[alpha]}"
refuse "ROOT file checked with the other mesh's key" InvalidSignature check_signed.py "$A/alpha-ROOT.compliance.txt" root "${KEY[beta]}"
refuse "the proposal checked as KIND root" InvalidSignature check_signed.py "$A/proposal.json" root "${KEY[alpha]}"
flip "$A/proposal.json" "$A/flip-proposal.json" proposed_terms.retention_period_days
refuse "proposal with retention_period_days + 1" InvalidSignature check_signed.py "$A/flip-proposal.json" proposal "${KEY[alpha]}"
flip "$A/agreement.json" "$A/flip-agreement-terms.json" terms.retention_period_days
refuse "agreement with its terms changed" "AssertionError: agreement_hash" check_signed.py "$A/flip-agreement-terms.json" agreement -
flip "$A/agreement.json" "$A/flip-agreement-signed-at.json" "signatures.did:vm:mesh:beta.signed_at"
refuse "agreement with beta's signed_at changed" InvalidSignature check_signed.py "$A/flip-agreement-signed-at.json" agreement -

section "the examples of docs/cli-json.md (§1 and §3 name them as checked)"
# The examples docs/cli-json.md prints (one run of the node, written by tests/e2e/cli_json.rs
# with VM_WRITE_CLI_JSON): §1 and §3 name them as checked, so they are re-checked here.
python3 - "$REPO/docs/cli-json.md" "$A/cli-json" <<'PY'
import json, os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
os.makedirs(sys.argv[2], exist_ok=True)
for key, body in re.findall(r"<!-- cli-json: ([\w-]+) -->\n```json\n(.*?)```", text, re.S):
    open(os.path.join(sys.argv[2], key + ".json"), "w").write(body)
PY
CJ=$A/cli-json
for f in proposals-show agreements-show scroll-root init witness-history; do
  [[ -f $CJ/$f.json ]] || fail "docs/cli-json.md has no \`$f\` example"
done
cj_key() { jget "d['agreement']['key_exchange']['$1_federation_key']" <"$CJ/agreements-show.json"; }
jget "d['proposal']" <"$CJ/proposals-show.json" >"$CJ/proposal.json"
cj_proposer=$(jget "d['proposer'].split(':')[-1]" <"$CJ/proposal.json")
check check_signed.py "$CJ/proposal.json" proposal "$(cj_key "$cj_proposer")"
refuse "docs/cli-json.md's proposal checked as KIND root" InvalidSignature check_signed.py "$CJ/proposal.json" root "$(cj_key "$cj_proposer")"
jget "d['agreement']" <"$CJ/agreements-show.json" >"$CJ/agreement.json"
check check_signed.py "$CJ/agreement.json" agreement -
jget "d['signed_root']" <"$CJ/scroll-root.json" >"$CJ/signed-root.json"
check check_signed.py "$CJ/signed-root.json" root "$(jget "d['public_key']" <"$CJ/init.json")"
jget "d['events'][0]" <"$CJ/witness-history.json" >"$CJ/witness-event.json"
check check_witness_event.py "$CJ/witness-event.json" \
  "$(cj_key "$(jget "d['witnessing_mesh'].split(':')[-1]" <"$CJ/witness-event.json")")" \
  "$(cj_key "$(jget "d['witnessed_mesh'].split(':')[-1]" <"$CJ/witness-event.json")")"

# ==========================================================================================
section "§2 scrolls and ROOT files (check_scroll.py)"
for m in alpha beta gamma; do
  for s in compliance federation; do
    check check_scroll.py "$A/$m-${s}_events.jsonl" "$A/$m-ROOT.$s.txt" "${KEY[$m]}" --leaf-hash 0
  done
done
# The old ROOT file (size 3) still matches the grown scroll at its size ("may lag, never lead").
check check_scroll.py "$A/alpha-compliance_events.jsonl" "$A/alpha-ROOT.compliance.size3.txt" "${KEY[alpha]}"
# The leaf hash the script prints for sequence 0 is the sibling the node put into the
# inclusion path of sequence 1 (a proof the node made).
leaf0=$(cd "$WORK" && python3 "$S/check_scroll.py" "$A/alpha-compliance_events.jsonl" --leaf-hash 0 | sed -n 's/^leaf hash (receipt_hash) of 0: //p')
path0=$(jget "d['inclusion']['path'][0]" <"$A/alpha-proof-seq1.json")
[[ -n $leaf0 && $leaf0 == "$path0" ]] || fail "leaf hash of sequence 0 $leaf0 is not the node's inclusion path entry $path0"
echo "ok   leaf hash of alpha Compliance 0 ($leaf0) = the node's inclusion-path sibling of sequence 1"
POSITIVE=$((POSITIVE + 1))
# ROOT files are one JCS line of exactly the six SignedRoot fields, LF-terminated; and the
# node really ordered members by UTF-16 code units (the receipt with "😀" and "！").
python3 - "$S" "$A"/*-ROOT.*.txt <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from vmcheck import jcs, parse
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    doc = parse(data)
    assert data == jcs(doc) + b"\n", f"{path}: not one JCS line"
    assert set(doc) == {"mesh_id", "root", "scroll", "signature", "size", "timestamp"}, sorted(doc)
print(f"ok   {len(sys.argv) - 2} ROOT files: each exactly JCS(six SignedRoot fields) + LF")
PY
python3 -c '
import sys
line = open(sys.argv[1], "rb").read().split(b"\n")[1].decode()
assert line.index("\"😀\"") < line.index("\"！\""), line
print("ok   the node wrote \"😀\" (U+1F600, UTF-16 D83D DE00) before \"！\" (U+FF01): UTF-16 order, as vmcheck.jcs")' \
  "$A/alpha-compliance_events.jsonl"
POSITIVE=$((POSITIVE + 2))
flip "$A/alpha-compliance_events.jsonl" "$A/flip-compliance-control.jsonl" control --line 1
refuse "scroll with one receipt's value changed (line kept canonical)" "sequence 1: root_hash" check_scroll.py "$A/flip-compliance-control.jsonl"
flip "$A/alpha-compliance_events.jsonl" "$A/flip-compliance-root_hash.jsonl" root_hash --line 6
refuse "scroll with one root_hash changed" "sequence 6: root_hash" check_scroll.py "$A/flip-compliance-root_hash.jsonl"
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(d.replace(b"\"control\":\"AC-3\",", b"\"control\": \"AC-3\",", 1))' \
  "$A/alpha-compliance_events.jsonl" "$A/flip-compliance-space.jsonl"
echo "     inserted one space after a colon in line 2"
refuse "scroll line not in RFC 8785 form (one space added)" "not in RFC 8785 form" check_scroll.py "$A/flip-compliance-space.jsonl"
flip "$A/alpha-ROOT.compliance.txt" "$A/flip-ROOT-size.txt" size
refuse "ROOT file with size + 1" "InvalidSignature" check_scroll.py "$A/alpha-compliance_events.jsonl" "$A/flip-ROOT-size.txt" "${KEY[alpha]}"

# ==========================================================================================
section "§3 fed_witness_event (check_witness_event.py)"
for m in alpha beta gamma; do
  for f in $(lines "$A/$m-federation_events.jsonl" fed_witness_event "$A/$m-witness"); do
    by=$(jget "d['witnessing_mesh'].split(':')[-1]" <"$f")
    of=$(jget "d['witnessed_mesh'].split(':')[-1]" <"$f")
    side=$(jtrue "'signed_root' in d" <"$f" && echo "witness's side, with signed_root" || echo "witnessed side")
    echo "   $m's Federation scroll, sequence $(seq_of "$f"): $by witnessed $of ($side)"
    check check_witness_event.py "$f" "${KEY[$by]}" "${KEY[$of]}"
  done
  ls "$A/$m"-witness.*.json >/dev/null 2>&1 || fail "no fed_witness_event receipt in $m's Federation scroll"
done
python3 -c '
import json, sys
for i, e in enumerate(json.load(open(sys.argv[1]))["events"]):
    json.dump(e, open(f"{sys.argv[2]}.{i}.json", "w"))
print(i + 1)' "$A/witness-history.json" "$A/history" >/dev/null
for f in "$A"/history.*.json; do
  by=$(jget "d['witnessing_mesh'].split(':')[-1]" <"$f")
  of=$(jget "d['witnessed_mesh'].split(':')[-1]" <"$f")
  check check_witness_event.py "$f" "${KEY[$by]}" "${KEY[$of]}"
done
# Each attestation id on both sides rebuilds to the same attestation (§3's table).
python3 - "$A"/{alpha,beta,gamma}-federation_events.jsonl <<'PY'
import json, sys
SAME = ("witness_id", "witnessed_mesh", "witnessing_mesh", "scroll", "witnessed_root",
        "witnessed_size", "timestamp", "witnessed_anchor", "samples_checked",
        "verification_method", "discrepancies")
seen = {}
for path in sys.argv[1:]:
    for line in open(path, "rb").read().split(b"\n")[:-1]:
        r = json.loads(line)
        if r["type"] == "fed_witness_event":
            a = {k: r[k] for k in SAME}; a["witness_result"] = r["verification_result"]
            mine = path.rsplit("/", 1)[-1].split("-", 1)[0]          # alpha / beta
            assert ("signed_root" in r) == (r["witnessing_mesh"] == "did:vm:mesh:" + mine), \
                "signed_root only on the witness's side"
            seen.setdefault(r["witness_id"], []).append(a)
both = [k for k, v in seen.items() if len(v) == 2]
assert both and all(v[0] == v[1] for k, v in seen.items() if len(v) == 2), seen
print(f"ok   {len(both)} attestation ids found on both sides rebuild to the same attestation; "
      "signed_root only in the witness's own receipt")
PY
POSITIVE=$((POSITIVE + 1))
WS=$(for f in "$A"/*-witness.*.json; do jtrue "'signed_root' in d" <"$f" && echo "$f" && break; done)
wby=$(jget "d['witnessing_mesh'].split(':')[-1]" <"$WS"); wof=$(jget "d['witnessed_mesh'].split(':')[-1]" <"$WS")
flip "$WS" "$A/flip-witness-size.json" witnessed_size
refuse "witness event with witnessed_size + 1" InvalidSignature check_witness_event.py "$A/flip-witness-size.json" "${KEY[$wby]}" "${KEY[$wof]}"
flip "$WS" "$A/flip-witness-sig.json" witness_signature
refuse "witness event with one base58 character of witness_signature changed" "InvalidSignature|signature bytes" check_witness_event.py "$A/flip-witness-sig.json" "${KEY[$wby]}" "${KEY[$wof]}"
flip "$WS" "$A/flip-witness-signed-root.json" signed_root.timestamp
refuse "witness event whose signed_root's timestamp changed" InvalidSignature check_witness_event.py "$A/flip-witness-signed-root.json" "${KEY[$wby]}" "${KEY[$wof]}"
refuse "witness event checked with the witnessed mesh's key as the witness's" InvalidSignature check_witness_event.py "$WS" "${KEY[$wof]}"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); r["verification_result"] = "discrepancy"; r["discrepancies"] = []
json.dump(r, open(sys.argv[2], "w"))' "$WS" "$A/flip-witness-result.json"
echo "     verification_result set to \"discrepancy\""
refuse "witness event with its result turned to discrepancy" InvalidSignature check_witness_event.py "$A/flip-witness-result.json" "${KEY[$wby]}"

# ==========================================================================================
section "§5 checkpoints (check_checkpoint.py)"
for m in alpha beta gamma; do
  for s in compliance federation; do
    check check_checkpoint.py "$A/$m-${s}_events.jsonl" "$A/$m-${s}_events.checkpoint"
  done
done
flip "$A/alpha-compliance_events.checkpoint" "$A/flip-checkpoint.json" roots_hash
refuse "checkpoint with one hex digit of roots_hash changed" "AssertionError: roots_hash" check_checkpoint.py "$A/alpha-compliance_events.jsonl" "$A/flip-checkpoint.json"
flip "$A/alpha-compliance_events.jsonl" "$A/flip-checkpoint-scroll.jsonl" root_hash --line 0
refuse "scroll under a checkpoint with one root_hash changed" "AssertionError: roots_hash" check_checkpoint.py "$A/flip-checkpoint-scroll.jsonl" "$A/alpha-compliance_events.checkpoint"
flip "$A/alpha-compliance_events.jsonl" "$A/flip-checkpoint-receipt.jsonl" control --line 4
refuse "scroll under a checkpoint with one receipt changed" "AssertionError: root" check_checkpoint.py "$A/flip-checkpoint-receipt.jsonl" "$A/alpha-compliance_events.checkpoint"

# ==========================================================================================
section "§6 proofs and anchors (check_receipt_proof.py, peer_proof.py, check_consistency.py)"
check check_receipt_proof.py "$A/alpha-proof-seq1.json" "${KEY[alpha]}"
check check_receipt_proof.py "$A/alpha-proof-seq5.json" "${KEY[alpha]}"
check check_receipt_proof.py "$A/beta-proof-seq0.json" "${KEY[beta]}"
check check_receipt_proof.py "$A/alpha-proof-seq7-offline.json" "${KEY[alpha]}" --allow-unanchored
check check_receipt_proof.py "$A/alpha-proof-seq7-size8.json" "${KEY[alpha]}" --allow-unanchored
check check_receipt_proof.py "$A/alpha-proof-seq2-size5.json" "${KEY[alpha]}" --allow-unanchored
refuse "an unanchored proof without --allow-unanchored" "no anchor proof" check_receipt_proof.py "$A/alpha-proof-seq7-size8.json" "${KEY[alpha]}"
for m in alpha beta; do
  for f in $(lines "$A/$m-federation_events.jsonl" fed_cross_anchor "$A/$m-cross"); do
    size=$(jget "d['anchored_size']" <"$f")
    of=$(jget "d['anchored_mesh'].split(':')[-1]" <"$f")
    check peer_proof.py "$f"
    (cd "$WORK" && python3 "$S/peer_proof.py" "$f") >"$f.peer-py.json"
    cli anchor peer-proof --receipt "$f" >"$f.peer-cli.json"
    python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); sys.exit(a!=b)' "$f.peer-py.json" "$f.peer-cli.json" ||
      fail "peer_proof.py and anchor peer-proof differ on $f"
    echo "ok   peer_proof.py output = \`anchor peer-proof\` output (JSON-equal), $m's cross-anchor of $of at $size"
    POSITIVE=$((POSITIVE + 1))
    # The receipt proof of the anchored mesh at that size, checked through this peer anchor.
    proof=""
    for p in "$A"/"$of"-proof-seq*.json; do
      [[ $p == *offline* || $p == *-size* ]] && continue
      jtrue "d['signed_root']['size']==$size" <"$p" && proof=$p && break
    done
    if [[ -n $proof ]]; then
      check check_receipt_proof.py "$proof" "${KEY[$of]}" --peer-anchor "$f.peer-cli.json" --anchor-key "did:vm:mesh:$m=${KEY[$m]}"
      LASTPEER=("$proof" "$f.peer-cli.json" "$m" "$of" "$f")
    else
      echo "   (no receipt proof of $of at size $size was made; this peer anchor is checked by its batch path only)"
    fi
  done
done
[[ ${#LASTPEER[@]} == 5 ]] || fail "no receipt proof was checked through a peer anchor"
read -r pproof ppeer pby pof pcross <<<"${LASTPEER[*]}"
flip "$pproof" "$A/flip-proof-receipt.json" receipt.control
refuse "receipt proof with the receipt changed" "not in the signed tree" check_receipt_proof.py "$A/flip-proof-receipt.json" "${KEY[$pof]}"
flip "$pproof" "$A/flip-proof-path.json" inclusion.path.0
refuse "receipt proof with one inclusion path hash changed" "not in the signed tree" check_receipt_proof.py "$A/flip-proof-path.json" "${KEY[$pof]}"
flip "$pproof" "$A/flip-proof-size.json" inclusion.tree_size
refuse "receipt proof with tree_size + 1" "proof size is not the signed size" check_receipt_proof.py "$A/flip-proof-size.json" "${KEY[$pof]}"
flip "$pproof" "$A/flip-proof-anchor-sig.json" anchor_proof.anchored_at
refuse "receipt proof whose local anchor's anchored_at changed" InvalidSignature check_receipt_proof.py "$A/flip-proof-anchor-sig.json" "${KEY[$pof]}"
flip "$pproof" "$A/flip-proof-batch-path.json" anchor_proof.merkle_path.0
refuse "receipt proof with one anchor batch path hash changed" "root not in the anchor batch" check_receipt_proof.py "$A/flip-proof-batch-path.json" "${KEY[$pof]}"
flip "$ppeer" "$A/flip-peer-sig.json" anchor_proof.anchor.anchored_at
refuse "peer anchor whose inner local anchor's anchored_at changed" InvalidSignature check_receipt_proof.py "$pproof" "${KEY[$pof]}" --peer-anchor "$A/flip-peer-sig.json" --anchor-key "did:vm:mesh:$pby=${KEY[$pby]}"
refuse "peer anchor checked without the anchoring mesh's key" "KeyError" check_receipt_proof.py "$pproof" "${KEY[$pof]}" --peer-anchor "$ppeer"
refuse "peer anchor checked with the anchored mesh's key as the anchoring mesh's" InvalidSignature check_receipt_proof.py "$pproof" "${KEY[$pof]}" --peer-anchor "$ppeer" --anchor-key "did:vm:mesh:$pby=${KEY[$pof]}"
flip "$pcross" "$A/flip-cross.json" combined_root
(cd "$WORK" && python3 "$S/peer_proof.py" "$A/flip-cross.json") >"$A/flip-cross.peer.json"
refuse "peer anchor made by peer_proof.py from a receipt whose combined_root changed" "root not in the anchor batch" check_receipt_proof.py "$pproof" "${KEY[$pof]}" --peer-anchor "$A/flip-cross.peer.json" --anchor-key "did:vm:mesh:$pby=${KEY[$pby]}"
refuse "peer_proof.py on a receipt that is not a fed_cross_anchor" "AssertionError" peer_proof.py "$(ls "$A"/alpha-witness.*.json | head -n 1)"

for k in 1 2 3 4 5 6 7 8; do check check_consistency.py "$A/alpha-consistency-$k-8.json"; done
check check_consistency.py "$A/alpha-consistency-3-8.json" "$A/alpha-ROOT.compliance.size3.txt" "$A/alpha-ROOT.compliance.txt" "${KEY[alpha]}"
# §6: a proven receipt's own root_hash, checked through a consistency proof from size
# leaf_index+1 to the signed size, with root_hash as the old root.
rh=$(jget "d['receipt']['root_hash']" <"$A/alpha-proof-seq1.json")
old=$(jget "d['old_root']" <"$A/alpha-consistency-2-3.json")
[[ $rh == "$old" ]] || fail "receipt 1's root_hash $rh is not the root at size 2 ($old)"
echo "ok   receipt 1's root_hash is the old root of \`scroll proof --from-size 2 --size 3\`"
POSITIVE=$((POSITIVE + 1))
check check_consistency.py "$A/alpha-consistency-2-3.json"
flip "$A/alpha-consistency-3-8.json" "$A/flip-consistency-path.json" proof.path.0
refuse "consistency proof with one path hash changed" "not consistent" check_consistency.py "$A/flip-consistency-path.json"
flip "$A/alpha-consistency-3-8.json" "$A/flip-consistency-old.json" old_root
refuse "consistency proof with old_root changed" "not consistent" check_consistency.py "$A/flip-consistency-old.json"
refuse "consistency proof tied to a signed root of another size" "is not the root at" check_consistency.py "$A/alpha-consistency-4-8.json" "$A/alpha-ROOT.compliance.size3.txt" "$A/alpha-ROOT.compliance.txt" "${KEY[alpha]}"

section "§6 an rfc3161 anchor (gamma's, through the TSA): check_receipt_proof.py, then openssl ts -verify"
GP=$A/gamma-proof-seq0.json
[[ $(jget "d['anchor_proof']['backend']" <"$GP") == rfc3161 ]] || fail "gamma's proof is not anchored through rfc3161"
# The doc's script checks the receipt, the signed root and the batch path, then stops at
# an rfc3161 backend and sends the reader to openssl: exit 1 with that message is its
# documented outcome.
rc=0
out=$(cd "$WORK" && python3 "$S/check_receipt_proof.py" "$GP" "${KEY[gamma]}" 2>&1) || rc=$?
if [[ $rc == 0 ]] || ! grep -q "is in did:vm:mesh:gamma's Compliance" <<<"$out" || ! grep -q "rfc3161: check tsa_token" <<<"$out"; then
  printf '%s\n' "$out" >&2
  fail "check_receipt_proof.py on an rfc3161 proof: expected the receipt checked, then the rfc3161 hand-off (exit 1)"
fi
echo "ok   check_receipt_proof.py $(short "$GP" "${KEY[gamma]}") (receipt, root and batch path checked; exit $rc at the rfc3161 hand-off, as documented)"
printf '%s\n' "$out" | sed 's/^/       /'
POSITIVE=$((POSITIVE + 1))
python3 - "$GP" "$A/gamma" <<'PY'
import base64, json, sys
ap = json.load(open(sys.argv[1]))["anchor_proof"]
open(sys.argv[2] + ".token.der", "wb").write(base64.b64decode(ap["tsa_token"]))
root = ap["batch_root"]
assert root.startswith("blake3:") and len(root) == 71
open(sys.argv[2] + ".batch_root.bin", "wb").write(bytes.fromhex(root[7:]))       # the 32 raw bytes
open(sys.argv[2] + ".batch_root.txt", "wb").write(root.encode())                  # its text (wrong)
raw = bytearray(bytes.fromhex(root[7:])); raw[0] ^= 1
open(sys.argv[2] + ".batch_root.flipped.bin", "wb").write(bytes(raw))
# The last byte is in the SignerInfo's signature (no unsigned attributes follow it); a
# bit in the middle can land in an embedded certificate openssl does not need.
tok = bytearray(base64.b64decode(ap["tsa_token"])); tok[-1] ^= 1
open(sys.argv[2] + ".token.flipped.der", "wb").write(bytes(tok))
print("     tsa_token (base64) -> gamma.token.der; batch_root -> gamma.batch_root.bin (32 bytes)")
PY
if ! out=$(openssl ts -verify -in "$A/gamma.token.der" -token_in -data "$A/gamma.batch_root.bin" -CAfile "$WORK/tsa/ca.pem" 2>&1) ||
  ! grep -q "Verification: OK" <<<"$out"; then
  printf '%s\n' "$out" >&2
  fail "openssl ts -verify (§6's command) refused gamma's token"
fi
echo "ok   openssl ts -verify -in token.der -token_in -data batch_root.bin -CAfile ca.pem: $(grep -o 'Verification: OK' <<<"$out")"
POSITIVE=$((POSITIVE + 1))
refuse_cmd "the token checked against the batch root's text instead of its 32 bytes" "Verification: FAILED|imprint" \
  openssl ts -verify -in "$A/gamma.token.der" -token_in -data "$A/gamma.batch_root.txt" -CAfile "$WORK/tsa/ca.pem"
refuse_cmd "the token checked against a batch root with one bit flipped" "Verification: FAILED|imprint" \
  openssl ts -verify -in "$A/gamma.token.der" -token_in -data "$A/gamma.batch_root.flipped.bin" -CAfile "$WORK/tsa/ca.pem"
refuse_cmd "a token with one bit flipped" "Verification: FAILED|error" \
  openssl ts -verify -in "$A/gamma.token.flipped.der" -token_in -data "$A/gamma.batch_root.bin" -CAfile "$WORK/tsa/ca.pem"
flip "$GP" "$A/flip-gamma-batch-path.json" anchor_proof.merkle_path.0
refuse "rfc3161 proof with one anchor batch path hash changed" "root not in the anchor batch" check_receipt_proof.py "$A/flip-gamma-batch-path.json" "${KEY[gamma]}"

# ==========================================================================================
section "§4 fed_discrepancy: alpha's operator rewrites alpha's Compliance history"
# Real discrepancies, made with the binary: alpha's Compliance files are deleted and other
# receipts appended with `scroll append` (offline, so the ROOT file is signed with alpha's
# key), then alpha restarts and anchors. First at the witnessed size (8: same size, other
# root), then longer (10: an extension of a different history).
forge() { # N: alpha's Compliance replaced by N forged receipts
  rm -f "$WORK/alpha/receipts/compliance/compliance_events.jsonl" \
    "$WORK/alpha/receipts/compliance/compliance_events.checkpoint" "$WORK/alpha/ROOT.compliance.txt"
  local i
  for ((i = 1; i <= $1; i++)); do printf '{"type":"compliance_check","control":"FORGED-%s","passed":true}\n' "$i"; done >"$WORK/forged-$1.jsonl"
  cli scroll append --data-dir "$WORK/alpha" --scroll Compliance --file "$WORK/forged-$1.jsonl" | tail -n 1 | sed 's/^/   /'
}
discrepancies_on_beta_at_least() { [[ $(count_receipts "$(fed beta)" fed_discrepancy) -ge $1 ]]; }
forge 8
start_node beta
start_node gamma
start_node alpha
cli anchor now --data-dir "$WORK/alpha" --json >/dev/null
wait_for "beta to record a fed_discrepancy about alpha's size-8 rewrite" discrepancies_on_beta_at_least 1
stop_node alpha
forge 10
start_node alpha
cli anchor now --data-dir "$WORK/alpha" --json >/dev/null
wait_for "beta to record a second fed_discrepancy (alpha's size-10 rewrite)" discrepancies_on_beta_at_least 2
cli discrepancies list --data-dir "$WORK/beta" --json >"$A/discrepancies-list.json"
# §4a: gamma (which witnesses alpha) arbitrates beta's first finding; beta suspends the
# agreement citing it, confirms the finding, resumes.
D1=$(jget "d[0]['report']['discrepancy_id']" <"$A/discrepancies-list.json")
add_peer beta gamma; add_peer gamma beta
P3=$(cli propose --data-dir "$WORK/beta" --target did:vm:mesh:gamma --trust-level 1 \
  --scrolls Compliance --json | jget "[e['proposal_id'] for e in d['events'] if e.get('event')=='sent'][0]")
wait_for "gamma to receive beta's proposal" proposal_open gamma "$P3"
cli proposals accept "$P3" --data-dir "$WORK/gamma" >/dev/null
wait_for "beta's agreement with gamma to be active" agreement_active beta gamma 1
cli discrepancies arbitrate "$D1" --arbiter gamma --data-dir "$WORK/beta" >/dev/null
cli agreements suspend "$AGREEMENT" --reason "alpha rewrote its history" --discrepancy "$D1" --data-dir "$WORK/beta" >/dev/null
cli discrepancies resolve "$D1" --outcome confirmed --note "alpha signed another root at size 8" --data-dir "$WORK/beta" >/dev/null
cli agreements resume "$AGREEMENT" --reason "reviewed" --data-dir "$WORK/beta" >/dev/null
on_alpha_at_least() { [[ $(count_receipts "$(fed alpha)" "$1") -ge $2 ]]; }
wait_for "alpha to record beta's suspension" on_alpha_at_least fed_trust_suspended 1
wait_for "alpha to record beta's resolution" on_alpha_at_least fed_discrepancy_resolved 1
wait_for "alpha to record beta's resumption" on_alpha_at_least fed_trust_resumed 1
wait_for "alpha to record gamma's verdict" on_alpha_at_least fed_arbitration_verdict 1
echo "   gamma's verdict on $D1: $(cli discrepancies show "$D1" --data-dir "$WORK/beta" --json | jget "d['arbitrations'][0]['outcome']")"
echo "   beta suspended $AGREEMENT citing $D1, resolved it as confirmed, resumed"
sleep 1 # alpha's receipt of beta's report (on_discrepancy) is not awaited; whatever arrived is checked
for m in alpha beta gamma; do stop_node "$m"; done
for m in alpha beta gamma; do
  cp "$WORK/$m/receipts/federation/federation_events.jsonl" "$A/$m-federation_events.final.jsonl"
  cp "$WORK/$m/receipts/federation/federation_events.checkpoint" "$A/$m-federation_events.final.checkpoint"
  cp "$WORK/$m/ROOT.federation.txt" "$A/$m-ROOT.federation.final.txt"
done
echo "   real fed_discrepancy receipts: beta $(count_receipts "$A/beta-federation_events.final.jsonl" fed_discrepancy), alpha $(count_receipts "$A/alpha-federation_events.final.jsonl" fed_discrepancy)"
DISC=()
for m in alpha beta; do
  for f in $(lines "$A/$m-federation_events.final.jsonl" fed_discrepancy "$A/$m-discrepancy"); do
    by=$(jget "d['reporting_mesh'].split(':')[-1]" <"$f")
    of=$(jget "d['reported_mesh'].split(':')[-1]" <"$f")
    echo "   $m's Federation scroll, sequence $(seq_of "$f"): $(jget "d['discrepancy_type'] + ' by ' + d['reporting_mesh'] + ', evidence ' + d['evidence']['kind']" <"$f")"
    check check_discrepancy.py "$f" "${KEY[$by]}" "${KEY[$of]}"
    DISC+=("$f")
  done
done
kinds=$(for f in "${DISC[@]}"; do jget "d['evidence']['kind']" <"$f"; done | sort -u | tr '\n' ' ')
echo "   evidence kinds checked on real receipts: $kinds"
[[ $kinds == *conflicting_roots* || $kinds == *inconsistent_extension* ]] ||
  fail "no real discrepancy with proof evidence (conflicting_roots / inconsistent_extension): $kinds"
D=${DISC[-1]}
dby=$(jget "d['reporting_mesh'].split(':')[-1]" <"$D"); dof=$(jget "d['reported_mesh'].split(':')[-1]" <"$D")
flip "$D" "$A/flip-disc-evidence.json" evidence.later.root
refuse "discrepancy with one hex digit of the evidence changed" "evidence does not hash to evidence_hash" check_discrepancy.py "$A/flip-disc-evidence.json" "${KEY[$dby]}" "${KEY[$dof]}"
flip "$D" "$A/flip-disc-body.json" details.scroll
refuse "discrepancy with a report field (details.scroll) changed" InvalidSignature check_discrepancy.py "$A/flip-disc-body.json" "${KEY[$dby]}" "${KEY[$dof]}"
python3 - "$S" "$D" "$A/flip-disc-rehashed.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
from vmcheck import b3, hstr, jcs, load
r = load(sys.argv[2])
r["evidence"]["later"]["root"] = r["evidence"]["earlier"]["root"]   # a forged finding
r["evidence_hash"] = hstr(b3(jcs(r["evidence"])))                    # re-hashed to match
json.dump(r, open(sys.argv[3], "w"))
print("     evidence changed and evidence_hash recomputed to match it")
PY
refuse "discrepancy with changed evidence and a matching evidence_hash" InvalidSignature check_discrepancy.py "$A/flip-disc-rehashed.json" "${KEY[$dby]}" "${KEY[$dof]}"
refuse "discrepancy evidence checked with the reporter's key as the reported mesh's" InvalidSignature check_discrepancy.py "$D" "${KEY[$dby]}" "${KEY[$dby]}"

section "§4a suspension notices, resolutions and arbitration verdicts (check_notice.py)"
NOTICES=()
for m in alpha beta; do
  for t in fed_trust_suspended fed_trust_resumed fed_discrepancy_resolved; do
    for f in $(lines "$A/$m-federation_events.final.jsonl" "$t" "$A/$m-$t"); do
      check check_notice.py "$f" "${KEY[beta]}"
      NOTICES+=("$f")
    done
  done
done
[[ ${#NOTICES[@]} -ge 6 ]] || fail "expected a suspension, a resumption and a resolution on both sides, found ${#NOTICES[@]} receipts"
VERDICTS=()
for m in alpha beta gamma; do
  for f in $(lines "$A/$m-federation_events.final.jsonl" fed_arbitration_verdict "$A/$m-verdict"); do
    check check_notice.py "$f" "${KEY[gamma]}"
    VERDICTS+=("$f")
  done
done
[[ ${#VERDICTS[@]} -ge 3 ]] || fail "expected gamma's verdict on alpha's, beta's and gamma's scrolls, found ${#VERDICTS[@]}"
flip "${VERDICTS[0]}" "$A/flip-verdict.json" outcome
refuse "arbitration verdict with its outcome changed" InvalidSignature check_notice.py "$A/flip-verdict.json" "${KEY[gamma]}"
refuse "arbitration verdict checked with the requester's key" InvalidSignature check_notice.py "${VERDICTS[0]}" "${KEY[beta]}"
R=$(printf '%s\n' "${NOTICES[@]}" | grep -m1 fed_discrepancy_resolved)
flip "$R" "$A/flip-resolution.json" outcome
refuse "resolution with its outcome changed" InvalidSignature check_notice.py "$A/flip-resolution.json" "${KEY[beta]}"
refuse "resolution checked with the reported mesh's key" InvalidSignature check_notice.py "$R" "${KEY[alpha]}"
N=$(printf '%s\n' "${NOTICES[@]}" | grep -m1 fed_trust_suspended)
flip "$N" "$A/flip-notice.json" notice.reason
refuse "suspension notice with its reason changed" "AssertionError|InvalidSignature" check_notice.py "$A/flip-notice.json" "${KEY[beta]}"

section "after the rewrites: Federation scrolls, ROOT files and checkpoints again"
for m in alpha beta gamma; do
  check check_scroll.py "$A/$m-federation_events.final.jsonl" "$A/$m-ROOT.federation.final.txt" "${KEY[$m]}"
  check check_checkpoint.py "$A/$m-federation_events.final.jsonl" "$A/$m-federation_events.final.checkpoint"
done
# The forged history is itself well formed and signed: only a witness can tell.
check check_scroll.py "$WORK/alpha/receipts/compliance/compliance_events.jsonl" "$WORK/alpha/ROOT.compliance.txt" "${KEY[alpha]}"

section "summary"
echo "   $POSITIVE checks passed on artifacts written by $(basename "$B") and on docs/cli-json.md's examples"
echo "   $NEGATIVE tampered copies refused (each for the reason expected)"
echo "   not covered: the HTTPS API's answers (POST /federation/verify, proofs over HTTP);"
echo "   DiscoveryRecord, RevocationNotice, SchemaSync and signed-request documents (no CLI output"
echo "   shows them); a peer anchor whose inner anchor is rfc3161 (gamma is at level 2)"
OK=1
