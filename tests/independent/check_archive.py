#!/usr/bin/env python3
"""Run archive_cases.py against archive_rules.py (SPEC.md §12.1–§12.8).

Both were written from SPEC.md alone, without reading src/. Prints one line
per failing case and finally `N passed, M failed`; exits 1 if any failed.
`-v` also prints passing cases. `--readings` prints the list of readings of
unclear sentences that some expectations rest on.

Usage: python3 tests/independent/check_archive.py [-v] [--readings]
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


if __name__ == "__main__":
    if "--readings" in sys.argv:
        import archive_cases
        print(archive_cases.READINGS, end="")
        sys.exit(0)
    sys.exit(run("-v" in sys.argv))
