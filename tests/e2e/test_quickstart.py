"""README's "## Quickstart", done as a new user would, against the local provider, in Chromium.

``django-admin startproject mysite`` in a temporary directory, then EXACTLY the code blocks of
the README's Quickstart section (parsed from README.md: each ``# <file>.py`` part is appended to
that file of the project), the URIs the section says to register registered at a dedicated
local provider, the ``python manage.py ...`` commands it names run in the project, and
``runserver``. Only two things are not the README's: the values of the three ``AUTHGEAR_``
settings (the provider's origin replaces a literal endpoint; the client id and secret come from
the environment the block reads), and one page protected with ``login_required`` at ``/``,
because the quickstart has none ("``login_required`` views now sign in through Authgear").

So this test fails when the quickstart is wrong: a name the block uses but a new project does
not define, a wrong path or setting, a URI the user is not told to register.

The project runs on this test run's Python (the package as installed here, editable or not);
``E2E_QUICKSTART_WHEEL=dist/authgear_django-X-py3-none-any.whl`` runs it instead in a fresh
venv with that wheel (and Django) pip-installed, as ``pip install authgear-django`` would
(needs the package index). ``E2E_QUICKSTART_README`` reads another README (to try a fix).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import at, screenshot, submit_credentials
from tests.e2e.servers import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_EMAIL,
    HOST,
    ROOT,
    DirectoryServer,
    Provider,
    base_env,
    free_port,
    run_command_in,
    start_provider,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

README = Path(os.environ.get("E2E_QUICKSTART_README", "").strip() or ROOT / "README.md")
WHEEL = os.environ.get("E2E_QUICKSTART_WHEEL", "").strip()
PIP_TIMEOUT = 600.0  # seconds for creating the venv and pip-installing the wheel and Django
YOUR_SITE = "https://<your site>"  # how the quickstart writes the site's origin
# The settings "pointing at Authgear" that a new user fills in (issue 14: "three settings").
AUTHGEAR_SETTINGS = ("AUTHGEAR_ENDPOINT", "AUTHGEAR_CLIENT_ID", "AUTHGEAR_CLIENT_SECRET")
PROTECTED_HEADING = "Signed in as {email}"
UNREGISTERED_PATH = "/the-quickstart-registers-no-post-logout-uri/"

# Appended to urls.py after the README's code: the quickstart protects no page itself.
PROTECTED_VIEW = """

# --- added by tests/e2e/test_quickstart.py, not part of the README's quickstart ---
from django.contrib.auth.decorators import login_required as _login_required  # noqa: E402
from django.http import HttpResponse as _HttpResponse  # noqa: E402
from django.utils.html import format_html as _format_html  # noqa: E402


def _protected(request):
    return _HttpResponse(_format_html("<h1>Signed in as {}</h1>", request.user.email))


urlpatterns += [path("", _login_required(_protected))]
"""


@dataclass
class Quickstart:
    """What the README's Quickstart section tells a user to write, register and run."""

    files: dict[str, str]  # "settings.py" -> the code to append to it
    redirect_paths: list[str] = field(default_factory=list)  # "/auth/callback/"
    post_logout_paths: list[str] = field(default_factory=list)
    manage_commands: list[list[str]] = field(default_factory=list)  # ["migrate"], ["check"]


def quickstart_section(readme: str) -> str:
    """The text from ``## Quickstart`` to the next ``## `` heading."""
    match = re.search(r"^## Quickstart[ \t]*\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
    assert match, f"{README} has no '## Quickstart' section"
    return match.group(1)


def parse_quickstart(section: str) -> Quickstart:
    """Split the section's ``python`` blocks by their ``# <file>.py`` lines; read the prose."""
    files: dict[str, str] = {}
    blocks = re.findall(r"^```python[ \t]*\n(.*?)^```", section, flags=re.M | re.S)
    assert blocks, "the Quickstart section has no ```python code block"
    for block in blocks:
        current: str | None = None
        for line in block.splitlines():
            marker = re.fullmatch(r"#\s*([\w/]+\.py)\s*", line)
            if marker:
                current = marker.group(1)
                files.setdefault(current, "")
                continue
            assert current or not line.strip(), (
                f"code before any '# <file>.py' line in the Quickstart block: {line!r}"
            )
            if current:
                files[current] += line + "\n"
    prose = re.sub(r"^```.*?^```", "", section, flags=re.M | re.S)
    paths = re.findall(re.escape(YOUR_SITE) + r"(/[^`\s)]*)", prose)
    commands = [command.split() for command in re.findall(r"`python manage\.py ([^`]+)`", section)]
    return Quickstart(
        files=files,
        redirect_paths=[path for path in paths if "logout" not in path],
        post_logout_paths=[path for path in paths if "logout" in path],
        manage_commands=commands,
    )


def with_local_values(settings_code: str, values: dict[str, str]) -> str:
    """The block's code with each ``AUTHGEAR_X = "literal"`` set to the local value instead.

    A value the block reads from the environment (``os.environ[...]``) is left as written; the
    test puts it in the site's environment.
    """
    for name in AUTHGEAR_SETTINGS:
        assert re.search(rf"^{name}\s*=", settings_code, flags=re.M), (
            f"the quickstart's settings.py does not set {name}"
        )
        literal = rf"^({name}\s*=\s*)(\"[^\"\n]*\"|'[^'\n]*')"
        # A replacement string, with the value escaped, so no backslash in it is read as a group.
        replacement = r"\g<1>" + repr(values[name]).replace("\\", "\\\\")
        settings_code = re.sub(literal, replacement, settings_code, flags=re.M)
    return settings_code


@dataclass
class Python:
    """The interpreter (and its django-admin) a new user's project runs on."""

    python: str
    env: dict[str, str]
    venv: Path | None = None  # set when the wheel was installed into a fresh venv

    def django_admin(self) -> list[str]:
        script = Path(self.python).parent / "django-admin"
        return [str(script)] if script.exists() else [self.python, "-m", "django"]


def project_python(workdir: Path, log_path: Path) -> Python:
    """This run's Python, or a fresh venv with ``E2E_QUICKSTART_WHEEL`` and Django installed."""
    env = base_env()
    if not WHEEL:
        return Python(python=sys.executable, env=env)
    wheel = Path(WHEEL).resolve()
    assert wheel.is_file(), f"E2E_QUICKSTART_WHEEL={WHEEL}: no such file"
    venv = workdir / "venv"
    # Nothing of this checkout on the path: the venv must work from the wheel alone.
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run_command_in(
        workdir, "venv", [sys.executable, "-m", "venv", str(venv)], env, log_path, PIP_TIMEOUT
    )
    python = str(venv / "bin" / "python")
    install = [python, "-m", "pip", "install", "-q", str(wheel), "Django"]
    run_command_in(workdir, "pip", install, env, log_path, PIP_TIMEOUT)
    return Python(python=python, env=env, venv=venv)


@dataclass
class QuickstartSite:
    url: str
    provider: Provider
    project: Path
    server: DirectoryServer
    log_path: Path

    def logs(self) -> str:
        return (
            f"--- provider log ---\n{self.provider.server.log_tail()}\n"
            f"--- quickstart project log (commands, runserver) ---\n{self.server.log_tail(120)}"
        )


@pytest.fixture
def quickstart_site(tmp_path: Path) -> Iterator[QuickstartSite]:
    """A new project with the README's quickstart applied, served next to its own provider."""
    quickstart = parse_quickstart(quickstart_section(README.read_text()))
    assert "settings.py" in quickstart.files, "the quickstart has no '# settings.py' code"
    assert "urls.py" in quickstart.files, "the quickstart has no '# urls.py' code"
    assert ["migrate"] in quickstart.manage_commands, "the quickstart never runs migrate"
    assert quickstart.redirect_paths, f"the quickstart registers no {YOUR_SITE}/... URI"

    log_path = tmp_path / "project.log"
    runtime = project_python(tmp_path, log_path)
    site_port = free_port()
    site_url = f"http://{HOST}:{site_port}"
    # Exactly the URIs the quickstart tells the user to register, on this site's origin (a
    # path nobody uses when it names no post-logout URI: Authgear accepts only registered ones).
    post_logout_paths = quickstart.post_logout_paths or [UNREGISTERED_PATH]
    provider = start_provider(
        tmp_path / "provider",
        redirect_uris=[site_url + path for path in quickstart.redirect_paths],
        post_logout_redirect_uris=[site_url + path for path in post_logout_paths],
    )
    server: DirectoryServer | None = None
    try:
        run_command_in(
            tmp_path,
            "startproject",
            [*runtime.django_admin(), "startproject", "mysite"],
            runtime.env,
            log_path,
        )
        project = tmp_path / "mysite"
        values = {
            "AUTHGEAR_ENDPOINT": provider.url,
            "AUTHGEAR_CLIENT_ID": CLIENT_ID,
            "AUTHGEAR_CLIENT_SECRET": CLIENT_SECRET,
        }
        for name, code in quickstart.files.items():
            if name == "settings.py":
                code = with_local_values(code, values)
            if name == "urls.py":
                code += PROTECTED_VIEW
            target = project / "mysite" / name
            with target.open("a") as file:
                file.write("\n\n# --- README.md, ## Quickstart ---\n" + code)
        site_env = {**runtime.env, **values}

        if runtime.venv is not None:  # the wheel, not this checkout, is what the site imports
            where = run_command_in(
                project,
                "project",
                [runtime.python, "-c", "import authgear_django; print(authgear_django.__file__)"],
                site_env,
                log_path,
            )
            assert Path(where.strip()).is_relative_to(runtime.venv), where

        for command in quickstart.manage_commands:
            run_command_in(
                project, "project", [runtime.python, "manage.py", *command], site_env, log_path
            )

        server = DirectoryServer(
            "quickstart site",
            [runtime.python, "manage.py", "runserver", f"{HOST}:{site_port}", "--noreload"],
            site_env,
            log_path,
            f"{site_url}/auth/login/",
            cwd=project,
        )
        server.start()
        server.wait_ready()
        yield QuickstartSite(
            url=site_url, provider=provider, project=project, server=server, log_path=log_path
        )
    finally:
        if server is not None:
            server.stop()
        provider.server.stop()


def wait_at_or_explain(page: Page, base: str, path: str, step: str) -> None:
    """Wait until the page is at ``path`` on ``base``; else fail with where it is instead."""
    try:
        page.wait_for_url(lambda url: at(url, base, path))
    except Exception as error:
        text = page.locator("body").inner_text(timeout=2_000)[:600]
        where = page.url.split("?", 1)[0]  # not the query: it may carry an id_token_hint
        message = f"{step}: expected {base}{path}, the browser is at {where}:\n{text}"
        raise AssertionError(message) from error


def test_readme_quickstart_logs_in_and_out(
    context: BrowserContext, quickstart_site: QuickstartSite
) -> None:
    site, op_url = quickstart_site, quickstart_site.provider.url
    try:
        page = context.new_page()
        visited: list[str] = []
        page.on("request", lambda request: visited.append(request.url))

        # A login_required page sends the visitor to the provider's login (LOGIN_URL).
        page.goto(f"{site.url}/")
        wait_at_or_explain(page, op_url, "/login", "opening the protected page")
        page.locator("#login-form").wait_for()
        submit_credentials(page)
        wait_at_or_explain(page, site.url, "/", "after logging in at the provider")
        heading = PROTECTED_HEADING.format(email=DEMO_EMAIL)
        assert page.locator("h1").inner_text() == heading
        assert any(at(url, site.url, "/auth/callback/") for url in visited)
        screenshot(page, "quickstart-signed-in.png")

        # Log out through the quickstart's /auth/logout/: its confirmation form, then the
        # provider's end_session, back to the registered /auth/logout/return/.
        page.goto(f"{site.url}/auth/logout/")
        page.get_by_role("button", name="Log out", exact=True).click()
        # LOGOUT_REDIRECT_URL is "/", which is protected: with the provider's session ended
        # too, the browser ends at the provider's login form again.
        wait_at_or_explain(page, op_url, "/login", "after logging out")
        paths = [url.split("?", 1)[0] for url in visited]  # no query: no id_token_hint shown
        assert any(at(url, op_url, "/oauth2/end_session") for url in visited), paths
        assert any(at(url, site.url, "/auth/logout/return/") for url in visited), paths
        page.locator("#login-form").wait_for()

        response = context.request.get(f"{site.url}/", max_redirects=0, timeout=5_000)
        assert response.status == 302, response.status
        assert response.headers["location"].startswith("/auth/login/?next=/")
    except BaseException:
        print(site.logs())  # shown with the failure
        raise
