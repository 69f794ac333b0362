"""Regenerate the whole of docs/reliability.md: the revocation part, then the faults part.

    python stress/reliability.py [--quick] [PATH]

stress/revocation.py writes the page and keeps the faults part; stress/faults.py then replaces
its part. Both run in full unless --quick (about 6 and 7 minutes here). Exit status: the first
non-zero one of the two, else 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STRESS = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    quick = ["--quick"] if "--quick" in argv else []
    paths = [arg for arg in argv if arg != "--quick"]
    page = paths[0] if paths else str(STRESS.parent / "docs" / "reliability.md")
    status = 0
    for script in ("revocation.py", "faults.py"):
        command = [sys.executable, str(STRESS / script), *quick, "--write", page]
        done = subprocess.run(command, check=False)  # noqa: S603 - our interpreter and scripts
        status = status or done.returncode
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
