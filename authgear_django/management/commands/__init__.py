"""The ``authgear_*`` management commands."""
