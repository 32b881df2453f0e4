"""The README is the manual: every setting and every check ID must be documented there."""

from __future__ import annotations

import re
from pathlib import Path

from authgear_django.conf import AuthgearSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_with_its_type() -> None:
    names = [name for name in vars(AuthgearSettings) if name.startswith("AUTHGEAR_")]
    assert len(names) >= 15
    for name in names:
        assert re.search(rf"^#### `{name}: [^`]+`$", README, re.M), f"{name} missing from README"


def test_every_check_id_is_in_the_catalogue_once() -> None:
    # checks.py reports them; conf.py holds the IDs of the setting rules it raises.
    source = "".join((ROOT / "authgear_django" / m).read_text() for m in ("checks.py", "conf.py"))
    ids = set(re.findall(r'"(authgear_django\.[EW]\d{3})"', source))
    assert ids
    for check_id in ids:
        assert f"| `{check_id}` |" in README, f"{check_id} missing from README"
    documented = re.findall(r"\| `(authgear_django\.[EWC]\d{3})` \|", README)
    assert sorted(documented) == sorted(set(documented)) == sorted(ids)


def test_readme_starts_with_the_demo_and_test_commands() -> None:
    block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split()[0] for line in block.strip().splitlines()] == [
        "scripts/demo",
        "scripts/test",
    ]
    for script in ("scripts/demo", "scripts/test"):
        assert (ROOT / script).exists()


def test_fault_table_matches_the_fault_tests() -> None:
    from tests.test_provider_faults import EXPECTED, FAULTS

    section = README.split("### When Authgear fails", 1)[1]
    table = section[section.index("| Call") :].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]
    calls = ["discovery", "jwks", "token", "userinfo", "revoke", "refresh"]
    assert len(rows) == len(calls)
    for call, row in zip(calls, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
        assert cells == [EXPECTED[call][fault] for fault in FAULTS], call
