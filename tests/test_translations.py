# ruff: noqa: RUF001 - the expected pages are in French and Chinese, punctuation included
"""Translations: the shipped catalogues are complete and in sync, pages and JSON speak the
visitor's language, and Authgear is asked for the same language (``ui_locales``).

The visitor's language comes from Django's ``LocaleMiddleware`` (``Accept-Language``), as on a
real multilingual site; tests/settings.py does not install it, so the tests below add it.
"""

from __future__ import annotations

import gettext as python_gettext
import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client
from django.urls import path
from django.utils import translation

import authgear_django
from authgear_django import responses
from authgear_django.exceptions import NoAccessToken
from authgear_django.login_flow import language_tag
from authgear_django.models import AuthgearLogin
from authgear_django.views import AuthgearLoginView
from tests.conftest import LoginFlow
from tests.fake_authgear import CONNECTION_REFUSED, FakeAuthgear, FakeUser
from tests.urls import urlpatterns as test_urlpatterns

pytestmark = pytest.mark.django_db
User = get_user_model()

APP_DIR = Path(authgear_django.__file__).parent
LANGUAGES_SHIPPED = ("fr", "zh_Hant")
SITE_LANGUAGES = [("en", "English"), ("fr", "Français"), ("zh-hant", "繁體中文")]

# A page in a browser set to this Accept-Language, the language Django activates, and the tag
# Authgear is sent as ui_locales.
FRENCH = ("fr-FR,fr;q=0.9", "fr", "fr")
CHINESE = ("zh-TW,zh;q=0.9", "zh-hant", "zh-Hant")  # Django's zh-tw falls back to zh-hant


@pytest.fixture
def multilingual_site(settings: Any) -> None:
    """The site's language follows the browser's Accept-Language (Django's LocaleMiddleware)."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
        "django.middleware.locale.LocaleMiddleware",
    )
    settings.MIDDLEWARE = middleware
    settings.LANGUAGES = SITE_LANGUAGES
    settings.LANGUAGE_CODE = "en"


def authorize_params(response: Any) -> dict[str, list[str]]:
    """The query of the redirect to Authgear's authorize endpoint."""
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    assert location.path == "/oauth2/authorize"
    return parse_qs(location.query)


# --- the catalogues ---------------------------------------------------------------------------


def po_entries(po_file: Path) -> list[dict[str, Any]]:
    """The entries of a .po file: msgid, plural msgid, msgstr forms, flags (header included)."""
    entries: list[dict[str, Any]] = []
    for block in po_file.read_text(encoding="utf-8").strip().split("\n\n"):
        entry: dict[str, Any] = {"flags": set(), "strings": {}}
        field = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            else:
                match = re.match(r'^(msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")$', line)
                if match:
                    field = match.group(1)
                    entry["strings"][field] = ""
                    line = match.group(2)
                assert field is not None, f"{po_file}: stray line {line!r}"
                entry["strings"][field] += json.loads(line)
        entries.append(entry)
    return entries


def msgids(po_file: Path) -> set[str]:
    return {entry["strings"]["msgid"] for entry in po_entries(po_file)} - {""}


@pytest.mark.parametrize("language", LANGUAGES_SHIPPED)
def test_catalogue_is_complete_with_no_fuzzy_entry(language: str) -> None:
    po_file = APP_DIR / "locale" / language / "LC_MESSAGES" / "django.po"
    entries = po_entries(po_file)
    assert len(entries) > 100  # the header and every sentence of the app
    for entry in entries:
        strings = entry["strings"]
        assert "fuzzy" not in entry["flags"], strings["msgid"]
        translations = [text for name, text in strings.items() if name.startswith("msgstr")]
        assert translations and all(translations), f"untranslated: {strings['msgid']!r}"
        if "python-format" in entry["flags"]:
            placeholders = set(re.findall(r"%\(\w+\)[sd]", strings["msgid"]))
            assert all(
                set(re.findall(r"%\(\w+\)[sd]", text)) == placeholders for text in translations
            )


@pytest.mark.parametrize("language", LANGUAGES_SHIPPED)
def test_compiled_catalogue_matches_its_source(language: str) -> None:
    """The committed .mo is the compiled .po: every sentence there, translated the same way."""
    folder = APP_DIR / "locale" / language / "LC_MESSAGES"
    with (folder / "django.mo").open("rb") as mo_file:
        compiled = python_gettext.GNUTranslations(mo_file)
    for entry in po_entries(folder / "django.po"):
        strings = entry["strings"]
        if not strings["msgid"]:
            continue
        if "msgid_plural" in strings:
            assert (
                compiled.ngettext(strings["msgid"], strings["msgid_plural"], 1)
                == (strings["msgstr[0]"])
            )
        else:
            assert compiled.gettext(strings["msgid"]) == strings["msgstr"]


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="makemessages needs GNU gettext")
def test_catalogues_hold_exactly_the_sentences_of_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """makemessages over today's source finds the very msgids that are translated: no sentence
    marked in the code is missing from the catalogues, none of theirs is stale."""
    copy = tmp_path / "authgear_django"
    shutil.copytree(APP_DIR, copy, ignore=shutil.ignore_patterns("locale", "__pycache__"))
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["fr"], verbosity=0)
    extracted = msgids(copy / "locale" / "fr" / "LC_MESSAGES" / "django.po")
    assert len(extracted) > 100
    for language in LANGUAGES_SHIPPED:
        shipped = msgids(APP_DIR / "locale" / language / "LC_MESSAGES" / "django.po")
        assert shipped == extracted, (sorted(extracted - shipped), sorted(shipped - extracted))


# --- pages and JSON in the visitor's language -------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "html_lang", "words"),
    [
        (
            FRENCH[0],
            "fr",
            [
                "<h1>Connexion annulée</h1>",
                "Vous avez annulé la connexion, vous n’êtes donc pas connecté.",
                "Réessayer",
                "Erreur 403",
            ],
        ),
        (
            CHINESE[0],
            "zh-hant",
            ["<h1>已取消登入</h1>", "您已取消登入，因此目前並未登入。", "再試一次", "錯誤 403"],
        ),
        (
            "en-GB,en;q=0.9",
            "en",
            ["<h1>Sign-in cancelled</h1>", "You cancelled signing in", "Try again", "Error 403"],
        ),
    ],
    ids=["fr", "zh-hant", "en"],
)
def test_cancelled_login_page_speaks_the_visitors_language(
    multilingual_site: None,
    login_flow: LoginFlow,
    fake_authgear: FakeAuthgear,
    accept_language: str,
    html_lang: str,
    words: list[str],
) -> None:
    login_flow.client.defaults["HTTP_ACCEPT_LANGUAGE"] = accept_language
    response = login_flow.finish(fake_authgear.deny(login_flow.start()))
    assert response.status_code == 403
    page = response.content.decode()
    assert f'<html lang="{html_lang}">' in page
    assert [word for word in words if word not in page] == []


def test_error_page_follows_the_active_language_without_locale_middleware(
    login_flow: LoginFlow, fake_authgear: FakeAuthgear
) -> None:
    """A project that activates the language itself (``translation.override``) gets it too."""
    url = login_flow.start()
    with translation.override("zh-hant"):
        response = login_flow.finish(fake_authgear.deny(url))
    page = response.content.decode()
    assert response.status_code == 403 and "已取消登入" in page and "錯誤 403" in page


@pytest.mark.parametrize(
    ("language", "description"),
    [
        ("fr", "Veuillez vous reconnecter."),
        ("zh-hant", "請重新登入。"),
        ("en", "Please sign in again."),
    ],
)
def test_json_error_description_is_translated(language: str, description: str) -> None:
    with translation.override(language):
        response = responses.json_error_response(NoAccessToken("no login"))
    body = json.loads(response.content)
    assert body == {"error": "login_required", "error_description": description}


@pytest.mark.parametrize(
    ("accept_language", "description"),
    [
        (FRENCH[0], "Le service de connexion est injoignable pour le moment."),
        (CHINESE[0], "目前無法連線至登入服務，請稍後再試。"),
    ],
)
def test_api_caller_gets_the_json_503_in_its_language_when_authgear_is_down(
    multilingual_site: None,
    clock: Any,
    login_flow: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    accept_language: str,
    description: str,
    settings: Any,
) -> None:
    settings.AUTHGEAR_EAGER_REFRESH = True  # the page itself needs the expired token refreshed
    assert login_flow.login(authgear_user).status_code == 302
    fake_authgear.fail("refresh", exception=CONNECTION_REFUSED)
    clock.shift(3600)  # the access token expired and cannot be refreshed
    response = login_flow.client.get(
        "/private/", HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE=accept_language
    )
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].startswith(description)


@pytest.mark.parametrize(
    ("accept_language", "description"),
    [
        (FRENCH[0], "Votre session a pris fin. Veuillez vous reconnecter."),
        (CHINESE[0], "您的工作階段已結束，請重新登入。"),
    ],
)
def test_api_caller_whose_login_ended_gets_the_json_401_in_its_language(
    multilingual_site: None,
    clock: Any,
    login_flow: LoginFlow,
    fake_authgear: FakeAuthgear,
    authgear_user: FakeUser,
    accept_language: str,
    description: str,
) -> None:
    assert login_flow.login(authgear_user).status_code == 302
    fake_authgear.end_sessions_of(authgear_user)  # Authgear ended it: the refresh is refused
    clock.shift(3600)
    response = login_flow.client.get(
        "/private/", HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE=accept_language
    )
    assert response.status_code == 401
    assert json.loads(response.content)["error_description"] == description


def test_logout_confirmation_and_signed_out_message_are_translated(
    multilingual_site: None, client: Client
) -> None:
    client.force_login(User.objects.create_user("jane", password="pw"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = CHINESE[0]
    page = client.get("/auth/logout/").content.decode()
    assert "確定要登出嗎？" in page and "您目前以 <strong>jane</strong> 的身分登入。" in page
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = FRENCH[0]
    response = client.post("/auth/logout/")  # a password user: logged out here only
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Vous avez été déconnecté."
    ]


def test_admin_labels_and_messages_are_translated(
    multilingual_site: None, fake_authgear: FakeAuthgear
) -> None:
    LoginFlow(Client(), fake_authgear).login(FakeUser())
    User.objects.create_superuser("root", "root@example.com", "pw")
    admin = Client(HTTP_ACCEPT_LANGUAGE=FRENCH[0])
    admin.login(username="root", password="pw")
    page = admin.get("/admin/authgear_django/authgearaccount/").content.decode()
    assert "Connexions actives" in page and "Dissocier les comptes sélectionnés" in page
    login = AuthgearLogin.objects.get()
    admin.defaults["HTTP_ACCEPT_LANGUAGE"] = CHINESE[0]
    response = admin.post(
        "/admin/authgear_django/authgearlogin/",
        {"action": "revoke_selected", "_selected_action": [str(login.pk)]},
        follow=True,
    )
    assert "已在 Authgear 撤銷 1 個登入，並結束其工作階段。" in response.content.decode()


# --- ui_locales sent to Authgear --------------------------------------------------------------


@pytest.mark.parametrize(
    ("django_code", "tag"),
    [
        ("zh-hant", "zh-Hant"),
        ("fr", "fr"),
        ("en-us", "en-US"),
        ("pt-br", "pt-BR"),
        ("sr-latn", "sr-Latn"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("de-ch-x-bank", "de-CH-x-bank"),
    ],
)
def test_django_language_codes_become_bcp47_tags(django_code: str, tag: str) -> None:
    assert language_tag(django_code) == tag


@pytest.mark.parametrize(("accept_language", "language", "tag"), [FRENCH, CHINESE])
def test_login_asks_authgear_for_the_active_language(
    multilingual_site: None,
    client: Client,
    fake_authgear: FakeAuthgear,
    accept_language: str,
    language: str,
    tag: str,
) -> None:
    response = client.get("/auth/login/", HTTP_ACCEPT_LANGUAGE=accept_language)
    assert language == response.wsgi_request.LANGUAGE_CODE
    assert authorize_params(response)["ui_locales"] == [tag]


def test_without_locale_middleware_the_default_language_is_sent(
    client: Client, fake_authgear: FakeAuthgear, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "en-us"
    assert authorize_params(client.get("/auth/login/"))["ui_locales"] == ["en-US"]


def test_the_setting_turns_the_default_off(
    multilingual_site: None, client: Client, fake_authgear: FakeAuthgear, settings: Any
) -> None:
    def login_params() -> dict[str, list[str]]:
        return authorize_params(client.get("/auth/login/", HTTP_ACCEPT_LANGUAGE=CHINESE[0]))

    settings.AUTHGEAR_UI_LOCALES_FROM_LANGUAGE = True
    assert login_params()["ui_locales"] == ["zh-Hant"]
    settings.AUTHGEAR_UI_LOCALES_FROM_LANGUAGE = False
    params = login_params()
    assert "ui_locales" not in params and params["client_id"]


def test_an_explicit_ui_locales_wins_over_the_active_language(
    multilingual_site: None, client: Client, fake_authgear: FakeAuthgear
) -> None:
    response = client.get("/auth/login/?ui_locales=ja", HTTP_ACCEPT_LANGUAGE=CHINESE[0])
    assert authorize_params(response)["ui_locales"] == ["ja"]


urlpatterns = [
    path("fr-login/", AuthgearLoginView.as_view(extra_params={"ui_locales": "fr-CA"})),
    *test_urlpatterns,
]


@pytest.mark.urls(__name__)
def test_a_ui_locales_set_in_code_wins_over_the_active_language(
    multilingual_site: None, client: Client, fake_authgear: FakeAuthgear
) -> None:
    response = client.get("/fr-login/", HTTP_ACCEPT_LANGUAGE=CHINESE[0])
    assert authorize_params(response)["ui_locales"] == ["fr-CA"]


def test_a_language_code_that_is_no_tag_is_not_sent(
    client: Client, fake_authgear: FakeAuthgear, settings: Any
) -> None:
    """A custom LANGUAGE_CODE Authgear could not read is left out, not a broken login."""
    settings.LANGUAGE_CODE = "x_private.lang"
    params = authorize_params(client.get("/auth/login/"))
    assert "ui_locales" not in params
