"""The documentation in docs/ is the manual: every setting, check ID, signal, command and
template tag must be documented there, and the README must stay a short first page.

The Sphinx build itself is not run here (too slow): ``scripts/docs`` builds it with warnings as
errors and checks every internal link; CI runs it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from django.dispatch import Signal

import authgear_django.client as client_module
import authgear_django.conf as conf_module
from authgear_django import signals
from authgear_django.conf import AuthgearSettings
from authgear_django.templatetags.authgear import register

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()

# Every page the manual promises (Diátaxis: tutorial, how-to, reference, explanation).
PAGES = [
    "index.md",
    "quickstart.md",
    "tutorial.md",
    "howto/protect-views.md",
    "howto/template-tags.md",
    "howto/client-types.md",
    "howto/several-workers.md",
    "howto/api-tokens.md",
    "howto/call-an-api.md",
    "howto/webhooks-and-single-logout.md",
    "howto/reauthentication.md",
    "howto/roles.md",
    "howto/sessions-page.md",
    "howto/admin.md",
    "howto/customise-users.md",
    "howto/migrate-from-mozilla.md",
    "howto/translations.md",
    "howto/example-site.md",
    "reference/settings.md",
    "reference/system-checks.md",
    "reference/signals.md",
    "reference/management-commands.md",
    "reference/template-tags.md",
    "reference/login-options.md",
    "reference/data-model.md",
    "reference/faults.md",
    "reference/conformance.md",
    "explanation/security-model.md",
    "explanation/token-lifecycle.md",
    "explanation/performance.md",
    "development.md",
    "changelog.md",
]


def page(name: str) -> str:
    return (DOCS / name).read_text()


def test_every_page_exists_and_is_in_the_table_of_contents() -> None:
    index = page("index.md")
    for name in PAGES:
        assert (DOCS / name).is_file(), f"docs/{name} missing"
        if name != "index.md":
            assert re.search(rf"^{re.escape(name.removesuffix('.md'))}$", index, re.M), name


def test_the_conformance_and_changelog_pages_include_their_sources() -> None:
    assert "```{include} ../conformance.md" in page("reference/conformance.md")
    assert "```{include} ../CHANGELOG.md" in page("changelog.md")
    assert (DOCS / "conformance.md").is_file()


def test_the_tutorial_shows_the_welcome_screenshot_and_every_step_of_the_guide() -> None:
    tutorial = page("tutorial.md")
    assert "](welcome.png)" in tutorial
    assert (DOCS / "welcome.png").is_file()
    for image in re.findall(r"\]\((images/[^)]+)\)", tutorial):
        assert (DOCS / image).is_file(), image
    for step in ("login route", "code → tokens", "userinfo", "end_session", "refresh", "API"):
        assert re.search(rf"^## Step \d+: .*{re.escape(step)}", tutorial, re.M | re.I), step


def test_the_token_lifecycle_has_a_sequence_diagram_of_each_phase() -> None:
    lifecycle = page("explanation/token-lifecycle.md")
    diagram = lifecycle.split("```mermaid", 1)[1].split("```", 1)[0]
    assert diagram.strip().startswith("sequenceDiagram")
    for phase in ("Login", "Refresh", "Liveness check", "Logout"):
        assert f"Note over B,A: {phase}" in diagram, phase
    # Mermaid ends a statement at ";": a message with one breaks the whole diagram in the browser.
    assert ";" not in diagram


# --- settings: generated from and checked against conf.py ------------------------------------


def raw_defaults() -> dict[str, Any]:
    """Each setting's default as conf.py writes it: ``self._get("AUTHGEAR_X", <default>)``.

    A ``self._get(...) or FALLBACK`` counts FALLBACK as the default. Settings read without a
    default (or with ``""``, the blank a required string starts from) are required.
    """
    tree = ast.parse(Path(conf_module.__file__).read_text())
    # conf.py imports a few constants inside functions (client.py imports no Django at import).
    namespace = {**vars(client_module), **vars(conf_module)}
    defaults: dict[str, Any] = {}

    def evaluate(node: ast.expr) -> Any:
        return eval(compile(ast.Expression(node), "conf.py", "eval"), namespace)  # noqa: S307

    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            first, fallback = node.values[0], node.values[-1]
            if (
                isinstance(first, ast.Call)
                and isinstance(first.func, ast.Attribute)
                and first.func.attr == "_get"
                and isinstance(first.args[0], ast.Constant)
                and isinstance(fallback, ast.Name)
            ):
                defaults[first.args[0].value] = evaluate(fallback)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_get"
            and isinstance(node.args[0], ast.Constant)
            and len(node.args) == 2
        ):
            defaults.setdefault(node.args[0].value, evaluate(node.args[1]))
    return defaults


def comparable(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def settings_sections() -> dict[str, str]:
    text = page("reference/settings.md")
    found = re.findall(r"^### `(AUTHGEAR_\w+): [^`]+`\n(.*?)(?=^##|\Z)", text, re.M | re.S)
    return dict(found)


def test_every_setting_is_documented_with_its_type_and_default() -> None:
    names = [name for name in vars(AuthgearSettings) if name.startswith("AUTHGEAR_")]
    assert len(names) >= 15
    sections = settings_sections()
    defaults = raw_defaults()
    for name in names:
        assert name in sections, f"{name} missing from docs/reference/settings.md"
        body = sections[name]
        default = defaults.get(name, "")
        if default == "":
            assert "No default." in body, f"{name} is required: say 'No default.'"
            continue
        documented = re.search(r"Default `([^`]+)`", body)
        assert documented, f"{name}: no 'Default `…`' in its section"
        assert comparable(ast.literal_eval(documented.group(1))) == comparable(default), name


def test_the_settings_summary_table_lists_every_setting_once() -> None:
    rows = re.findall(r"^\| \[`(AUTHGEAR_\w+)`\]", page("reference/settings.md"), re.M)
    assert sorted(rows) == sorted(settings_sections())
    assert len(rows) == len(set(rows))


# --- the other reference pages ---------------------------------------------------------------


def test_every_check_id_is_in_the_catalogue_once() -> None:
    # checks.py reports them; conf.py holds the IDs of the setting rules it raises.
    source = "".join((ROOT / "authgear_django" / m).read_text() for m in ("checks.py", "conf.py"))
    ids = set(re.findall(r'"(authgear_django\.[EW]\d{3})"', source))
    assert ids
    catalogue = page("reference/system-checks.md")
    for check_id in ids:
        assert f"| `{check_id}` |" in catalogue, f"{check_id} missing from the docs"
    documented = re.findall(r"\| `(authgear_django\.[EWC]\d{3})` \|", catalogue)
    assert sorted(documented) == sorted(set(documented)) == sorted(ids)


def test_every_signal_is_documented() -> None:
    names = sorted(name for name, value in vars(signals).items() if isinstance(value, Signal))
    assert len(names) >= 5
    reference = page("reference/signals.md")
    documented = re.findall(r"^\| `(\w+)` \|", reference, re.M)
    for name in names:
        assert name in documented, f"signal {name} missing from docs/reference/signals.md"


def test_every_management_command_is_documented() -> None:
    commands = sorted(
        path.stem
        for path in (ROOT / "authgear_django" / "management" / "commands").glob("*.py")
        if not path.name.startswith("_")
    )
    assert commands
    reference = page("reference/management-commands.md")
    for command in commands:
        assert re.search(rf"^## `{command}`", reference, re.M), command


def test_every_template_tag_is_documented() -> None:
    reference = page("reference/template-tags.md")
    assert register.tags
    for tag in register.tags:
        assert f"| `{tag}` |" in reference, tag


def test_fault_table_matches_the_fault_tests() -> None:
    from tests.test_provider_faults import EXPECTED, FAULTS

    section = page("reference/faults.md").split("## When Authgear fails", 1)[1]
    table = section[section.index("| Call") :].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]
    calls = ["discovery", "jwks", "token", "userinfo", "revoke", "refresh"]
    assert len(rows) == len(calls)
    for call, row in zip(calls, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
        assert cells == [EXPECTED[call][fault] for fault in FAULTS], call


def test_the_docs_extra_installs_what_conf_py_uses() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    extra = pyproject.split("\ndocs = [", 1)[1].split("]", 1)[0]
    for requirement in ("sphinx", "myst-parser", "furo", "sphinxcontrib-mermaid"):
        assert f'"{requirement}' in extra, requirement
    conf = page("conf.py")
    for extension in ('"myst_parser"', '"sphinxcontrib.mermaid"', 'html_theme = "furo"'):
        assert extension in conf
    assert 'version("authgear-django")' in conf  # the version comes from the package metadata


# --- the README: a short first page ----------------------------------------------------------


def test_readme_starts_with_the_demo_and_test_commands() -> None:
    block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split()[0] for line in block.strip().splitlines()] == [
        "scripts/demo",
        "scripts/test",
    ]
    for script in ("scripts/demo", "scripts/test"):
        assert (ROOT / script).exists()


def test_readme_quickstart_is_short_and_points_to_the_docs() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    code = [
        line
        for block in re.findall(r"```\w*\n(.*?)```", quickstart, re.S)
        for line in block.splitlines()
        if line.strip()
    ]
    assert 0 < len(code) <= 20
    for needed in (
        "INSTALLED_APPS",
        "AUTHENTICATION_BACKENDS",
        "MIDDLEWARE",
        "AUTHGEAR_ENDPOINT",
        "AUTHGEAR_CLIENT_ID",
        "AUTHGEAR_CLIENT_SECRET",
        'include("authgear_django.urls")',
        "LOGIN_URL",
        "migrate",
    ):
        assert needed in quickstart, needed
    assert "](docs/welcome.png)" in README
    assert "](docs/)" in README
    assert "https://authgear-django.readthedocs.io/" in README
    assert "](CHANGELOG.md)" in README and "](LICENSE)" in README


def test_the_rate_limit_capacity_table_matches_the_capacity_model() -> None:
    """docs/howto/rate-limits.md's table is authgear_django.capacity's numbers, every mode and
    lifetime it promises (eager; lazy without token; lazy with get_access_token = eager)."""
    from authgear_django.capacity import token_calls_per_user_hour, users_per_egress_ip

    modes = {
        "Eager": True,
        "Lazy, pages need no token": False,
        "Lazy, every page calls `get_access_token`": True,
    }
    rows = re.findall(
        r"^\| ([^|]+?) +\| +(\d+) s \| +([\d.]+) \| +(\d+) \|$",
        page("howto/rate-limits.md"),
        re.M,
    )
    found = {(mode, int(lifetime)): (calls, int(users)) for mode, lifetime, calls, users in rows}
    assert set(found) == {(mode, lifetime) for mode in modes for lifetime in (10, 300, 1800)}
    for (mode, lifetime), (calls, users) in found.items():
        expected_calls = token_calls_per_user_hour(lifetime, eager=modes[mode])
        assert calls == f"{expected_calls:.2f}".rstrip("0").rstrip("."), (mode, lifetime)
        assert users == users_per_egress_ip(lifetime, eager=modes[mode]), (mode, lifetime)
