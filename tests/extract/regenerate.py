"""Write ``expected.json`` for NEW golden cases from the current extractor.

    python tests/extract/regenerate.py            # every case that has no expected.json yet
    python tests/extract/regenerate.py NAME ...   # only these (still only if new)

An existing expected.json is never rewritten: when a layout changes, add a new case instead.
Read what the script wrote before committing it: it is the extractor's answer, not the truth.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from extract_golden import CASES_DIR, FIELDS, case_names, extract, meta


def main(argv: list[str]) -> int:
    names = argv or case_names()
    for name in names:
        target = CASES_DIR / name / "expected.json"
        if target.exists():
            if argv:
                print(f"{name}: expected.json exists, not rewritten (add a new case instead)")
            continue
        got = extract(name)
        data = {k: got[k] for k in FIELDS[meta(name)["kind"]]}
        target.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{name}: wrote {target.relative_to(CASES_DIR.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
