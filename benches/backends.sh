#!/usr/bin/env bash
# Which chunk backend, which build: examples/measure.rs built four ways and
# run in interleaved rounds, medians in one table. Answers "does a plain
# downstream build seal and open as fast as this repository's?" and "how
# close is the library to the raw cipher?" from one run.
#
#   bash benches/backends.sh                     # 1 GiB, 5 rounds
#   SIZE=256M ROUNDS=3 bash benches/backends.sh  # quick look
#
# The builds (each in its own target directory, so none overwrites another):
#   repo        this repository, default features (ring chunks), no flags
#   downstream  a new crate that depends on kuvert by path with default
#               features and runs measure.rs as its main: what a dependent
#               gets (it inherits no build configuration from kuvert)
#   rustcrypto  --no-default-features: the chacha20poly1305 chunk backend,
#               without the AVX-512 cfg (what it does on CPUs without
#               AVX-512 too: its AVX2 path)
#   rustcrypto+avx512  the same with RUSTFLAGS="--cfg chacha20_avx512"
#
# ring has no AVX-512 code (its x86-64 ChaCha20-Poly1305 is a fused AVX2 +
# BMI2 or SSE4.1 assembly), so its rows stand for CPUs without AVX-512 too.
#
# Environment knobs: SIZE [1G], ROUNDS [5], CHUNK [64K], WAIT_IDLE [120]
# seconds to wait before each round while more than BUSY_MAX [10] % of the
# CPU is used by others, VARIANTS (a subset of the names above).
set -euo pipefail

SIZE=${SIZE:-1G}
ROUNDS=${ROUNDS:-5}
CHUNK=${CHUNK:-64K}
WAIT_IDLE=${WAIT_IDLE:-120}
BUSY_MAX=${BUSY_MAX:-10}
VARIANTS=${VARIANTS:-repo downstream rustcrypto rustcrypto+avx512}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/target/backends
mkdir -p "$OUT"
say() { printf '%s\n' "backends.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# busy, wait_idle
. "$REPO/benches/idle.sh"

# --- builds ----------------------------------------------------------------

build() { # name -> path of its measure binary
    local name=$1 dir
    case $name in
        repo)
            (cd "$REPO" && RUSTFLAGS= cargo build --release --quiet --example measure)
            cp "$REPO/target/release/examples/measure" "$OUT/measure-repo" ;;
        rustcrypto)
            # The same target directory and flags as repo (only kuvert
            # rebuilds); the binary is copied out before the next build.
            (cd "$REPO" && RUSTFLAGS= cargo build --release --quiet --example measure --no-default-features)
            cp "$REPO/target/release/examples/measure" "$OUT/measure-rustcrypto" ;;
        rustcrypto+avx512)
            # Other flags: every crate rebuilds, in a directory of its own.
            (cd "$REPO" && RUSTFLAGS="--cfg chacha20_avx512" CARGO_TARGET_DIR=$OUT/target-avx512 \
                cargo build --release --quiet --example measure --no-default-features)
            cp "$OUT/target-avx512/release/examples/measure" "$OUT/measure-rustcrypto+avx512" ;;
        downstream)
            dir=$OUT/downstream
            mkdir -p "$dir/src"
            # The same program, as a dependent's own binary. Its `ring`
            # feature only tells measure.rs that kuvert uses ring chunks
            # (kuvert's default); it turns nothing on in kuvert.
            cp "$REPO/examples/measure.rs" "$dir/src/main.rs"
            cp "$REPO/Cargo.lock" "$dir/Cargo.lock"
            cat >"$dir/Cargo.toml" <<EOF
[package]
name = "kuvert-downstream-measure"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
kuvert = { path = "$REPO" }
chacha20poly1305 = { version = "0.11", default-features = false }
ring = { version = "0.17.14", default-features = false }

[features]
default = ["ring"]
ring = []
zeroize-chunk-key = []

# As in kuvert's Cargo.toml, so the shared target directory's dependencies
# fit (debug info changes no code).
[profile.release]
debug = 1

[workspace]
EOF
            # Shares the repo's target directory: the dependencies are built
            # with the same (empty) flags, so only kuvert and main rebuild.
            (cd "$dir" && RUSTFLAGS= CARGO_TARGET_DIR=$REPO/target cargo build --release --quiet)
            cp "$REPO/target/release/kuvert-downstream-measure" "$OUT/measure-downstream" ;;
        *) die "unknown variant $name" ;;
    esac
}
for v in $VARIANTS; do
    say "building $v"
    build "$v"
done

# --- interleaved rounds -------------------------------------------------------

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
avx=$(grep -q -m 1 avx512f /proc/cpuinfo && echo "with AVX-512F" || echo "without AVX-512F")
rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+changes" || true)
echo "machine: nproc=$(nproc), $cpu, $avx ($(uname -r)) | git $rev$dirty, $(rustc --version | cut -d' ' -f1-2) | $SIZE payload, $CHUNK chunks, $ROUNDS interleaved rounds"
echo

samples=$OUT/samples.txt
: >"$samples"
set -- $VARIANTS
n=$#
variants=("$@")
BUSY_SEEN=()
for ((round = 0; round < ROUNDS; round++)); do
    BUSY_SEEN+=("$(wait_idle)")
    say "round $((round + 1))/$ROUNDS (others used ${BUSY_SEEN[-1]}% CPU just before)"
    for ((k = 0; k < n; k++)); do
        v=${variants[(k + round) % n]}
        run=$OUT/run-$v-$round.txt
        "$OUT/measure-$v" --size "$SIZE" --chunk-size "$CHUNK" --runs 1 >"$run"
        # Table rows "| label | threads | MiB/s | range | vs raw |" -> samples.
        awk -F'|' -v v="$v" 'NF >= 6 && $3 ~ /^ *[0-9]+ *$/ {
                gsub(/^ +| +$/, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $6)
                gsub(/ /, "", $8)
                print v "|" $2 "|" $3 "|" $4 "|" $6 "|" $8 }' "$run" >>"$samples"
        # "a 14-byte seal ... : N µs, median of 1000" -> a row of its own.
        sed -n 's/^a 14-byte seal.*: \([0-9.]*\) µs.*/'"$v"'|14-byte seal, µs (not MiB\/s)|1|\1|/p' "$run" >>"$samples"
    done
done

# --- medians ----------------------------------------------------------------------

# Median MiB/s (or vs raw, field 5) of one variant's row.
cell() { # variant label threads field
    awk -F'|' -v v="$1" -v l="$2" -v t="$3" -v f="$4" '$1 == v && $2 == l && $3 == t {print $f}' "$samples" |
        sort -g | awk '{x[NR] = $1} END {if (NR == 0) print "–"; else print (NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2)}'
}
echo "Plaintext MiB/s, median of $ROUNDS rounds (one run of each build per round, builds in rotating order); in brackets the library's row against the raw cipher it uses on as many threads, by wall time, then by CPU time (user + system, all threads: what the library adds even on a busy machine):"
echo
header="| row | threads |"
rule="|---|---:|"
for v in "${variants[@]}"; do header+=" $v |"; rule+="---:|"; done
echo "$header"
echo "$rule"
awk -F'|' '!seen[$2 "|" $3]++ {print $2 "|" $3}' "$samples" | while IFS='|' read -r label threads; do
    line="| $label | $threads |"
    for v in "${variants[@]}"; do
        mib=$(cell "$v" "$label" "$threads" 4)
        if [[ $label == kuvert* && $mib != – ]]; then
            line+=" $mib ($(cell "$v" "$label" "$threads" 5); CPU $(cell "$v" "$label" "$threads" 6)) |"
        else
            line+=" $mib |"
        fi
    done
    echo "$line"
done
echo
echo "CPU used by other processes just before each round: ${BUSY_SEEN[*]/%/%}"
echo

# --- targets ------------------------------------------------------------------------

check() { # text value limit
    if awk -v v="$2" -v l="$3" 'BEGIN {exit !(v >= l)}'; then echo "- PASS $1"; else echo "- MISS $1"; fi
}
have() { [[ " $VARIANTS " == *" $1 "* ]]; }
echo "Targets:"
echo
if have repo && have downstream; then
    for row in "kuvert seal, pre-sized sink" "kuvert open, copy_to"; do
        for t in 1 2; do
            d=$(cell downstream "$row" $t 4) r=$(cell repo "$row" $t 4)
            check "downstream within 5 % of repo, $row, $t threads: $d vs $r MiB/s" "$d" "$(awk -v r="$r" 'BEGIN {print 0.95 * r}')"
        done
    done
fi
if have repo; then
    r=$(cell repo "kuvert seal, pre-sized sink" 2 5)
    check "repo seal on 2 threads >= 0.90 of the raw cipher on 2 threads: $r" "$r" 0.90
    c=$(cell repo "kuvert seal, pre-sized sink" 2 6)
    echo "- (by CPU time the same seal is $c of the raw cipher's)"
fi
