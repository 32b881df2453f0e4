"""Template tags: ``{% load authgear %}``."""
