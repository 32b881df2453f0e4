"""``{% load authgear %}``: the links and forms it renders, and that they really work.

The forms are rendered by a page of this module's own URLconf (``pytest.mark.urls``) and posted
by a test client that enforces CSRF, the way a browser would submit them.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import Http404, HttpRequest, HttpResponse
from django.template import Context, Template, TemplateSyntaxError, engines
from django.test import Client, RequestFactory
from django.test.html import parse_html
from django.urls import path
from django.utils import translation

from authgear_django.models import AuthgearLogin
from authgear_django.templatetags.authgear import safe_next_path
from authgear_django.views import safe_next_url
from tests import urls as test_urls
from tests.conftest import LoginFlow
from tests.fake_authgear import FakeAuthgear, FakeUser

TAG_PAGES = {
    "logout": "{% load authgear %}<main>{% authgear_logout_form %}</main>",
    "everywhere": "{% load authgear %}<main>{% authgear_logout_everywhere_form %}</main>",
    "logout-next": '{% load authgear %}{% authgear_logout_form next="/after-logout/" %}',
}


def tag_page(request: HttpRequest, name: str) -> HttpResponse:
    """A page made of one tag: rendered like ``render()`` does, or with a plain ``Context``."""
    if name not in TAG_PAGES:
        raise Http404
    if request.GET.get("context") == "plain":
        html = Template(TAG_PAGES[name]).render(Context({"request": request}))
    else:
        html = engines["django"].from_string(TAG_PAGES[name]).render({}, request)
    return HttpResponse(html)


urlpatterns = [path("tags/<str:name>/", tag_page), *test_urls.urlpatterns]

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_templatetags")]

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]{64})"')
UNSAFE_NEXT = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "\\\\evil.example/",
    "javascript:alert(1)",
    "orders/",  # relative to the callback URL, never what the link meant
    "http://testserver/orders/",  # our own host, but tags emit paths only
    "/" + "a" * 5000,  # longer than the login view accepts
]


def render(source: str, request: HttpRequest | None = None, **context: Any) -> str:
    request = request or RequestFactory().get("/")
    return Template("{% load authgear %}" + source).render(Context({"request": request, **context}))


class FormParser(HTMLParser):
    """The forms of a page: action, method, fields and the button's text."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({**attributes, "fields": {}, "button": ""})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][attributes["name"]] = attributes["value"]
        elif tag == "button":
            self._in_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button:
            self.forms[-1]["button"] += data


def only_form(html: str) -> dict[str, Any]:
    parser = FormParser()
    parser.feed(html)
    assert len(parser.forms) == 1, html
    return parser.forms[0]


def without_token(html: str) -> str:
    """The HTML with its (random, masked) CSRF token replaced by ``TOKEN``."""
    assert len(CSRF_INPUT.findall(html)) == 1, html
    return CSRF_INPUT.sub('name="csrfmiddlewaretoken" value="TOKEN"', html)


# Links -------------------------------------------------------------------------------------


def test_login_url_carries_the_current_page_as_next_fully_encoded() -> None:
    request = RequestFactory().get("/orders/", {"page": "2", "q": "a&b c"})
    html = render("{% authgear_login_url next=request.get_full_path %}", request)
    assert html == "/auth/login/?next=%2Forders%2F%3Fpage%3D2%26q%3Da%2526b%2Bc"


def test_login_url_options_are_encoded_and_the_ampersands_escaped_for_html() -> None:
    html = render(
        '{% authgear_login_url next="/orders/" prompt="login" login_hint="jane@example.com" '
        'ui_locales="fr en" x_page="signup" %}'
    )
    assert html == (
        "/auth/login/?next=%2Forders%2F&amp;prompt=login&amp;login_hint=jane%40example.com"
        "&amp;ui_locales=fr+en&amp;x_page=signup"
    )


def test_login_url_without_arguments_is_the_bare_login_url() -> None:
    assert render("{% authgear_login_url %}") == "/auth/login/"


def test_as_var_stores_the_url_and_prints_nothing() -> None:
    html = render(
        '{% authgear_login_url next="/a/" prompt="login" as reauth_url %}[{{ reauth_url }}]'
    )
    assert html == "[/auth/login/?next=%2Fa%2F&amp;prompt=login]"


def test_signup_url_uses_the_signup_view() -> None:
    html = render('{% authgear_signup_url next="/welcome/" ui_locales="ja" %}')
    assert html == "/auth/signup/?next=%2Fwelcome%2F&amp;ui_locales=ja"


def test_signup_tag_refuses_x_page_when_the_template_is_compiled() -> None:
    with pytest.raises(TemplateSyntaxError):
        Template('{% load authgear %}{% authgear_signup_url x_page="login" %}')


@pytest.mark.parametrize("unsafe", UNSAFE_NEXT)
def test_an_unsafe_next_is_left_out(unsafe: str) -> None:
    assert render("{% authgear_login_url next=url %}", url=unsafe) == "/auth/login/"
    assert render("{% authgear_signup_url next=url %}", url=unsafe) == "/auth/signup/"
    form = only_form(render("{% authgear_logout_form next=url %}", url=unsafe))
    assert "next" not in form["fields"]


@pytest.mark.parametrize("path", ["/", "/orders/?a=1&b=2", "/%2F/x", "/caf%C3%A9/", *UNSAFE_NEXT])
def test_tags_accept_exactly_the_paths_the_login_view_accepts(path: str) -> None:
    request = RequestFactory().get("/")
    view_accepts = path.startswith("/") and safe_next_url(request, path) == path
    assert (safe_next_path(path) == path) is view_accepts


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("prompt", "bogus"),
        ("prompt", "none login"),
        ("ui_locales", "<script>"),
        ("x_page", "settings"),
        ("login_hint", "not a login id!"),
        # Any other hint type from a page would sign the browser into someone else's session.
        (
            "login_hint",
            "https://authgear.com/login_hint?type=app_session_token&app_session_token=x",
        ),
    ],
)
def test_a_value_the_login_view_would_refuse_is_left_out(option: str, value: str) -> None:
    html = render(f'{{% authgear_login_url next="/a/" {option}=value %}}', value=value)
    assert html == "/auth/login/?next=%2Fa%2F"


def test_following_the_link_sends_the_options_to_authgear_and_the_login_returns_to_next(
    client: Client, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    request = RequestFactory().get("/private/", {"tab": "1"})
    url = Template(
        "{% load authgear %}{% authgear_login_url next=request.get_full_path prompt='login' "
        "login_hint=user_email ui_locales='fr' as url %}{{ url|safe }}"
    ).render(Context({"request": request, "user_email": authgear_user.email}))

    authorize = client.get(url)
    assert authorize.status_code == 302
    params = parse_qs(urlsplit(authorize["Location"]).query)
    assert params["prompt"] == ["login"]
    assert params["ui_locales"] == ["fr"]
    assert params["login_hint"] == [
        "https://authgear.com/login_hint?type=login_id&email=jane%40example.com"
    ]
    callback = client.get(fake_authgear.authorize(authorize["Location"], authgear_user))
    assert callback.status_code == 302
    assert callback["Location"] == "/private/?tab=1"


def test_following_the_signup_link_opens_authgears_signup_page(
    client: Client, fake_authgear: FakeAuthgear
) -> None:
    url = Template(
        "{% load authgear %}{% authgear_signup_url ui_locales='ja' as url %}{{ url|safe }}"
    ).render(Context({}))
    authorize = client.get(url)
    assert authorize.status_code == 302
    params = parse_qs(urlsplit(authorize["Location"]).query)
    assert params["x_page"] == ["signup"]
    assert params["ui_locales"] == ["ja"]


# Forms -------------------------------------------------------------------------------------


def test_logout_form_html() -> None:
    html = render("{% authgear_logout_form %}")
    expected = (
        '<form method="post" action="/auth/logout/">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">'
        '<button type="submit">Log out</button></form>'
    )
    assert parse_html(without_token(html)) == parse_html(expected)


def test_logout_form_label_class_form_class_and_next() -> None:
    html = render(
        '{% authgear_logout_form label="Sign out" class="btn btn-link" form_class="inline" '
        'next="/bye/?a=1&b=2" %}'
    )
    expected = (
        '<form method="post" action="/auth/logout/" class="inline">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">'
        '<input type="hidden" name="next" value="/bye/?a=1&amp;b=2">'
        '<button type="submit" class="btn btn-link">Sign out</button></form>'
    )
    assert parse_html(without_token(html)) == parse_html(expected)


def test_logout_everywhere_form_posts_to_the_everywhere_view() -> None:
    html = render("{% authgear_logout_everywhere_form %}")
    expected = (
        '<form method="post" action="/auth/logout/everywhere/">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="TOKEN">'
        '<button type="submit">Log out everywhere</button></form>'
    )
    assert parse_html(without_token(html)) == parse_html(expected)


def test_the_default_label_is_translated_when_the_page_is_rendered() -> None:
    with translation.override("fr"):
        html = render("{% authgear_logout_form %}")
        french = translation.gettext("Log out")  # ours, or django.contrib.admin's if it wins
    assert french in ("Se déconnecter", "Déconnexion")  # the catalogues' French, not English
    assert only_form(html)["button"] == french


def test_labels_and_classes_from_variables_are_escaped() -> None:
    html = render(
        "{% authgear_logout_form label=label class=css %}",
        label="<script>alert(1)</script>",
        css='x" onclick="alert(1)',
    )
    assert "<script>" not in html and 'onclick="' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="x&quot; onclick=&quot;alert(1)"' in html


def test_an_unknown_form_attribute_is_a_template_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="style"):
        render('{% authgear_logout_form style="color: red" %}')


def test_without_a_request_or_token_the_form_has_no_token_field() -> None:
    html = Template("{% load authgear %}{% authgear_logout_form %}").render(Context({}))
    assert "csrfmiddlewaretoken" not in html
    assert only_form(html)["action"] == "/auth/logout/"


def submit(client: Client, page: str) -> Any:
    """Load ``page`` with ``client`` and submit its only form with the fields it renders."""
    response = client.get(page)
    assert response.status_code == 200
    form = only_form(response.content.decode())
    assert form["method"] == "post"
    return client.post(form["action"], form["fields"])


@pytest.mark.parametrize("page", ["/tags/logout/", "/tags/logout/?context=plain"])
def test_posting_the_rendered_logout_form_logs_the_user_out(
    page: str, fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    flow = LoginFlow(Client(enforce_csrf_checks=True), fake_authgear)
    assert flow.login(authgear_user).status_code == 302
    form = only_form(flow.client.get(page).content.decode())
    # CSRF is really enforced: the same post without the rendered token is refused.
    refused = flow.client.post(form["action"], {})
    assert refused.status_code == 403
    assert flow.client.get("/private/").status_code == 200

    response = submit(flow.client, page)

    assert response.status_code == 302
    assert response["Location"].startswith("https://authgear.test/oauth2/end_session?")
    assert AuthgearLogin.objects.count() == 0
    assert fake_authgear.live_refresh_tokens() == []
    assert flow.client.get("/private/").status_code == 302


def test_posting_the_everywhere_form_ends_the_login_on_every_device(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    laptop = LoginFlow(Client(enforce_csrf_checks=True), fake_authgear)
    phone = LoginFlow(Client(enforce_csrf_checks=True), fake_authgear)
    laptop.login(authgear_user)
    phone.login(authgear_user)
    assert AuthgearLogin.objects.count() == 2

    response = submit(laptop.client, "/tags/everywhere/")

    assert response.status_code == 302
    assert AuthgearLogin.objects.count() == 0
    assert fake_authgear.live_refresh_tokens() == []
    assert laptop.client.get("/private/").status_code == 302
    assert phone.client.get("/private/").status_code == 302


def test_a_logout_form_next_is_where_the_logout_lands(
    fake_authgear: FakeAuthgear, authgear_user: FakeUser
) -> None:
    flow = LoginFlow(Client(enforce_csrf_checks=True), fake_authgear)
    flow.login(authgear_user)
    end_session = submit(flow.client, "/tags/logout-next/")["Location"]
    # Authgear ends its session and sends the browser back with our state.
    (state,) = parse_qs(urlsplit(end_session).query)["state"]
    landing = flow.client.get("/auth/logout/return/", {"state": state})
    assert landing["Location"] == "/after-logout/"
