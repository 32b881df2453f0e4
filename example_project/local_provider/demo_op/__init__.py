"""App of the local provider: the email login backend and the ``seed_demo`` command."""
