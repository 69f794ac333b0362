"""Regenerate docs/reliability.md: its revocation, faults, resurrection, replica and
restrictions parts.

    python stress/reliability.py [--quick] [PATH]

stress/revocation.py writes the page and keeps the other parts; stress/faults.py,
stress/resurrection.py, stress/replica.py and stress/restrictions.py then replace theirs. All
run in full unless --quick (about 6, 7, 5, 2 and 2 minutes here). Exit status: the first
non-zero one, else 0.
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
    scripts = ("revocation.py", "faults.py", "resurrection.py", "replica.py", "restrictions.py")
    for script in scripts:
        command = [sys.executable, str(STRESS / script), *quick, "--write", page]
        done = subprocess.run(command, check=False)  # noqa: S603 - our interpreter and scripts
        status = status or done.returncode
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
