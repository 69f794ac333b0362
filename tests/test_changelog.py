"""CHANGELOG.md follows Keep a Changelog 1.1.0 and names the version the package declares."""

import re
from datetime import date
from pathlib import Path

import phoenix_apikeys

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"

UNRELEASED = "## [Unreleased]"
RELEASE_HEADING = re.compile(r"## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2})")
# The types of change Keep a Changelog 1.1.0 names, and no others.
SECTION_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def headings(prefix: str) -> list[str]:
    """Every line of the changelog that is a heading of exactly this level."""
    lines = CHANGELOG.read_text(encoding="utf-8").splitlines()
    return [line.rstrip() for line in lines if line.startswith(prefix)]


def test_unreleased_comes_first_then_the_package_version() -> None:
    versions = headings("## ")
    assert versions[:1] == [UNRELEASED], versions
    assert len(versions) >= 2, "no release heading after [Unreleased]"
    first_release = RELEASE_HEADING.fullmatch(versions[1])
    assert first_release, versions[1]
    assert first_release["version"] == phoenix_apikeys.__version__


def test_release_headings_are_version_and_iso_date() -> None:
    releases = [heading for heading in headings("## ") if heading != UNRELEASED]
    assert releases, "no release heading"
    for heading in releases:
        match = RELEASE_HEADING.fullmatch(heading)
        assert match, f"{heading!r} is not '## [x.y.z] - YYYY-MM-DD'"
        date.fromisoformat(match["date"])  # a real calendar date


def test_section_types_are_keep_a_changelogs() -> None:
    sections = headings("### ")
    assert sections, "no '### ' section"
    for heading in sections:
        assert heading.removeprefix("### ") in SECTION_TYPES, heading
