"""docs/gitleaks.toml: its rule finds every key this app makes, and nothing in this repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from phoenix_apikeys.keys import generate_key, key_regex

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs" / "gitleaks.toml"


def rule_regex(text: str) -> str:
    """The rule's regex as gitleaks reads it: a TOML literal multi-line string."""
    found = re.search(r"^regex = '''(.*)'''$", text, re.MULTILINE)
    assert found, "the rule has a regex"
    return found.group(1)


def test_the_rule_is_the_apps_own_regex_and_the_readmes() -> None:
    regex = rule_regex(CONFIG.read_text())
    assert regex == key_regex("phxs_", "phxu_")
    assert rule_regex((ROOT / "README.md").read_text()) == regex
    assert re.search(r'^keywords = \["phxs_", "phxu_"\]$', CONFIG.read_text(), re.MULTILINE)


def test_the_rule_finds_every_generated_key() -> None:
    rule = re.compile(rule_regex(CONFIG.read_text()))
    for prefix in ("phxs_", "phxu_"):
        for _ in range(2000):
            key = generate_key(prefix)
            assert rule.fullmatch(key)
            assert rule.search(f'PHOENIX_KEY="{key}"\n') and rule.search(f"Bearer {key},")


def test_the_rule_ignores_near_misses() -> None:
    rule = re.compile(rule_regex(CONFIG.read_text()))
    key = generate_key("phxu_")
    for text in (key[:-1], "phxx_" + key[5:], key + "A", "x" + key, key.replace("phxu_", "PHXU_")):
        assert not rule.search(text), text


def test_the_rule_finds_nothing_in_this_repository() -> None:
    """No key was ever committed here: every tracked text file is clean."""
    rule = re.compile(rule_regex(CONFIG.read_text()))
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    scanned = 0
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images
        scanned += 1
        assert not rule.search(text), path
    assert scanned > 100
