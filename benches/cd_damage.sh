#!/usr/bin/env bash
# The "done when" of issue 12 through the CLI binaries: one `cd` volume with
# default parity, a 5 % contiguous burst plus 0.5 % scattered sectors zeroed
# (a ddrescue image of a scratched disc: unreadable sectors filled with zeros);
# `kuvert open` must extract it byte-identical and `kuvert repair` (no key)
# must restore the volume as sealed. Needs about 3 GB in /dev/shm (or $W).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q --release -p kuvert-cli
K=${K:-$PWD/target/release/kuvert}
W=${W:-$(mktemp -d /dev/shm/kuvert-cd-damage.XXXXXX 2>/dev/null || mktemp -d)}
trap 'rm -rf "$W"' EXIT
cd "$W"
head -c 600000000 /dev/urandom > data.bin
$K keygen -o id.txt 2> pub.txt
R=$(sed -n 's/^Public key: //p' pub.txt)
/usr/bin/time -f "seal: %e s wall, %M KB RSS" $K seal -q -r "$R" --volume-size cd -o set.kuv data.bin
ls -l set.kuv
cp set.kuv orig.kuv
python3 - <<'PY'
import os, random
p='set.kuv'; n=os.path.getsize(p)//2048
burst=n//20; start=n//3
bad=set(range(start,start+burst))
rnd=random.Random(12)
scattered=0
while scattered < n//200:
    s=rnd.randrange(n)
    if s not in bad:
        bad.add(s); scattered+=1
with open(p,'r+b') as f:
    for s in sorted(bad):
        f.seek(s*2048); f.write(b'\0'*2048)
print(f"{n} sectors; zeroed a burst of {burst} at {start} and {scattered} scattered: {len(bad)} in all ({100*len(bad)/n:.2f} %)")
PY
mv set.kuv damaged.kuv
/usr/bin/time -f "open: %e s wall, %M KB RSS" $K open -i id.txt -o out damaged.kuv
cmp out/data.bin data.bin && echo "open: byte-identical"
set +e; $K verify damaged.kuv > verify.txt; status=$?; set -e
grep -v ': FAILED: ' verify.txt
echo "verify without a key: $(grep -c ': FAILED: ' verify.txt) damaged chunks named, exit status $status (3: all repairable)"
[ "$status" = 3 ]
mkdir rep
/usr/bin/time -f "repair: %e s wall, %M KB RSS" $K repair damaged.kuv -o rep
cmp rep/damaged.kuv orig.kuv && echo "repair: byte-identical to the volume as sealed"
