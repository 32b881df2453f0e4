"""A local OpenID provider for development, demos and tests, laid out like Authgear.

This is a separate Django project (not an app of the example site). It is
django-oauth-toolkit in OIDC mode, configured and lightly extended so that its
URLs, discovery document, tokens and claims look like Authgear's:

    python -m example_project.local_provider migrate
    python -m example_project.local_provider seed_demo
    python -m example_project.local_provider runserver      # http://127.0.0.1:9000

See README.md next to this file. Never use it in production.
"""
