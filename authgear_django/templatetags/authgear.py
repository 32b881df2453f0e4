"""``{% load authgear %}``: login and signup links, logout buttons.

::

    <a href="{% authgear_login_url next=request.get_full_path %}">Log in</a>
    <a href="{% authgear_signup_url next=request.get_full_path ui_locales="fr" %}">Sign up</a>
    {% authgear_login_url prompt="login" as reauth_url %}
    {% authgear_logout_form label="Sign out" class="btn" %}
    {% authgear_logout_everywhere_form %}

The links only carry what the login view accepts, checked by the same rules
(:func:`authgear_django.authorization.clean_login_options`). A value the view would refuse is
left out of the link instead of breaking the page: tag arguments often come from the request or
the user's profile (``login_hint=user.email``), and no input may turn a page into a 500.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django import template
from django.middleware.csrf import get_token
from django.template.context import Context
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy

from authgear_django.authorization import clean_login_options
from authgear_django.exceptions import AuthgearError
from authgear_django.views import MAX_PARAMETER_LENGTH

register = template.Library()

logger = logging.getLogger("authgear_django")
security_logger = logging.getLogger("django.security.authgear_django")

LOGOUT_FORM_TEMPLATE = "authgear_django/tags/logout_form.html"
LOGOUT_LABEL = gettext_lazy("Log out")
LOGOUT_EVERYWHERE_LABEL = gettext_lazy("Log out everywhere")
# ``class`` is a Python keyword, so it arrives through **attributes.
FORM_ATTRIBUTES = frozenset({"class", "form_class"})


def _text(value: object) -> str:
    """A tag argument as text: strings and lazy translations count, anything else is empty."""
    if isinstance(value, (str, Promise)):
        return str(value)
    return ""


def safe_next_path(value: object) -> str | None:
    """``value`` if it is a path on this site (``/...``, not ``//host``), else ``None``.

    For a path this is the rule of the login view's :func:`~authgear_django.views.safe_next_url`
    (Django's ``url_has_allowed_host_and_scheme`` and the same length limit); absolute URLs are
    never emitted, even to an allowed host, so a link in a page can only point back here.
    """
    url = _text(value)
    if not url:
        return None
    if (
        url.startswith("/")
        and len(url) <= MAX_PARAMETER_LENGTH
        and url_has_allowed_host_and_scheme(url, allowed_hosts=None)
    ):
        return url
    security_logger.warning("authgear_django: a template tag dropped an unsafe next URL")
    return None


def _login_options(options: dict[str, object]) -> dict[str, str]:
    """The options the login view will accept; each refused one is dropped (and logged)."""
    accepted: dict[str, str] = {}
    for name, raw in options.items():
        value = _text(raw).strip()
        if not value:
            continue
        try:
            cleaned = clean_login_options({name: value})
        except AuthgearError:
            # The name only: a login_hint is an email address or a phone number.
            logger.warning("authgear_django: a template tag dropped an invalid %s", name)
            continue
        # The login view turns a login_hint into Authgear's URL form itself; keep the short one.
        accepted[name] = value if name == "login_hint" else cleaned[name]
    return accepted


def _view_url(view_name: str, next_url: object, options: dict[str, object]) -> str:
    """``view_name``'s URL with a safe ``next`` and the accepted options in its query string."""
    params: dict[str, str] = {}
    safe_next = safe_next_path(next_url)
    if safe_next:
        params["next"] = safe_next
    params.update(_login_options(options))
    url = reverse(view_name)
    return f"{url}?{urlencode(params)}" if params else url


@register.simple_tag
def authgear_login_url(
    *,
    next: object = None,  # the name Django's auth views use
    prompt: object = None,
    login_hint: object = None,
    ui_locales: object = None,
    x_page: object = None,
) -> str:
    """The URL of our login view, e.g. ``/auth/login/?next=%2Forders%2F&ui_locales=fr``.

    ``prompt="login"`` forces Authgear's login page even inside an SSO session;
    ``login_hint`` pre-fills an email, phone number or username; ``ui_locales`` picks the
    language of Authgear's pages; ``x_page="signup"`` opens the signup page.
    """
    options = {
        "prompt": prompt,
        "login_hint": login_hint,
        "ui_locales": ui_locales,
        "x_page": x_page,
    }
    return _view_url("authgear_django:login", next, options)


@register.simple_tag
def authgear_signup_url(
    *,
    next: object = None,  # the name Django's auth views use
    prompt: object = None,
    login_hint: object = None,
    ui_locales: object = None,
) -> str:
    """The URL of our signup view: the login view sending Authgear ``x_page=signup``."""
    options = {"prompt": prompt, "login_hint": login_hint, "ui_locales": ui_locales}
    return _view_url("authgear_django:signup", next, options)


def _logout_form_context(
    context: Context,
    *,
    view_name: str,
    label: object,
    next_url: object,
    attributes: dict[str, object],
) -> dict[str, Any]:
    """What the logout-form template needs; the CSRF token is the page's own."""
    unknown = set(attributes) - FORM_ATTRIBUTES
    if unknown:
        raise template.TemplateSyntaxError(
            f"logout form tags accept label, next, class and form_class, not {sorted(unknown)}"
        )
    form: dict[str, Any] = {
        "action": reverse(view_name),
        "label": label,
        "next": safe_next_path(next_url),
        "button_class": _text(attributes.get("class")),
        "form_class": _text(attributes.get("form_class")),
    }
    request = context.get("request")
    if context.get("csrf_token") is None and request is not None:
        # A template rendered with a plain Context: without a token the POST would be refused.
        form["csrf_token"] = get_token(request)
    return form


@register.inclusion_tag(LOGOUT_FORM_TEMPLATE, takes_context=True)
def authgear_logout_form(
    context: Context,
    *,
    label: object = LOGOUT_LABEL,
    next: object = None,  # the name Django's auth views use
    **attributes: object,
) -> dict[str, Any]:
    """A POST form (with the CSRF token) that logs out here and at Authgear.

    ``label`` is the button's text, ``class`` the button's CSS class, ``form_class`` the
    form's. The template is ``authgear_django/tags/logout_form.html``; override it to restyle.
    """
    return _logout_form_context(
        context,
        view_name="authgear_django:logout",
        label=label,
        next_url=next,
        attributes=attributes,
    )


@register.inclusion_tag(LOGOUT_FORM_TEMPLATE, takes_context=True)
def authgear_logout_everywhere_form(
    context: Context,
    *,
    label: object = LOGOUT_EVERYWHERE_LABEL,
    next: object = None,  # the name Django's auth views use
    **attributes: object,
) -> dict[str, Any]:
    """Like :func:`authgear_logout_form`, but ends every login of the user, on every device."""
    return _logout_form_context(
        context,
        view_name="authgear_django:logout_everywhere",
        label=label,
        next_url=next,
        attributes=attributes,
    )
