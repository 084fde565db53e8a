#!/usr/bin/env python3
"""Run archive_cases.py against archive_rules.py (SPEC.md §12.1–§12.8).

Both were written from SPEC.md alone, without reading src/. Prints one line
per failing case and finally `N passed, M failed`; exits 1 if any failed.
`-v` also prints passing cases. `--readings` prints the list of readings of
unclear sentences that some expectations rest on.

`--export DIR` writes every case as DIR/NNN.case for the reference to run
(tests/independent_archive.rs): the content, the selection, the limits and
the expected outcome, strings and bytes in hex.

Usage: python3 tests/independent/check_archive.py [-v] [--readings] [--export DIR]
"""

from __future__ import annotations

import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from archive_rules import Plan, Refusal, check_archive  # noqa: E402


def _show(x) -> str:
    if isinstance(x, Plan):
        return repr(x.brief())
    return str(x) if isinstance(x, Refusal) else repr(x)


def run(verbose: bool = False) -> int:
    import archive_cases
    passed = failed = 0
    for c in archive_cases.CASES:
        try:
            got = check_archive(c.content, c.selection, c.limits)
            if isinstance(c.expect, Refusal):
                ok = isinstance(got, Refusal) and got == c.expect
            else:
                ok = isinstance(got, Plan) and got.brief() == c.expect
        except Exception:  # a crash is a failure, never a pass
            got = "crash: " + traceback.format_exc().strip().splitlines()[-1]
            ok = False
        if ok:
            passed += 1
            if verbose:
                print(f"PASS {c.name}")
        else:
            failed += 1
            want = str(c.expect) if isinstance(c.expect, Refusal) else repr(c.expect)
            print(f"FAIL {c.name}: expected {want}, got {_show(got)}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def export(directory: str) -> int:
    """Writes each case as text the Rust test reads without a JSON parser."""
    import archive_cases
    os.makedirs(directory, exist_ok=True)
    hexs = lambda text: text.encode("utf-8").hex() or "-"  # noqa: E731
    for number, c in enumerate(archive_cases.CASES):
        lines = [f"name: {hexs(c.name)}", f"content: {c.content.hex() or '-'}"]
        lines.append("selection: " + (",".join(hexs(p) for p in c.selection)
                                      if c.selection is not None else "all"))
        lim = c.limits
        lines.append(f"limits: {lim.index_length} {lim.entries} {lim.depth} {lim.file_data}")
        if isinstance(c.expect, Refusal):
            fields = " ".join(
                f"{k}={v if isinstance(v, int) else hexs(v)}"
                for k, v in sorted(c.expect.fields.items()))
            lines.append(f"refusal: {c.expect.variant} {fields}".rstrip())
        else:
            for item in c.expect:
                kind, path, third = item
                if kind == "file":
                    lines.append(f"item: file {hexs(path)} {third.hex() or '-'}")
                elif kind == "dir":
                    lines.append(f"item: dir {hexs(path)}")
                else:
                    lines.append(f"item: {kind} {hexs(path)} {hexs(third)}")
        with open(os.path.join(directory, f"{number:03}.case"), "w") as out:
            out.write("\n".join(lines) + "\n")
    print(f"exported {len(archive_cases.CASES)} cases")
    return 0


if __name__ == "__main__":
    if "--export" in sys.argv:
        sys.exit(export(sys.argv[sys.argv.index("--export") + 1]))
    if "--readings" in sys.argv:
        import archive_cases
        print(archive_cases.READINGS, end="")
        sys.exit(0)
    sys.exit(run("-v" in sys.argv))
