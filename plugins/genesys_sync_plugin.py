"""The sync's Airflow plugin from the plugins folder, for an Airflow where the package is not
installed (``plugins/`` copied into the plugins folder and on ``sys.path``, nothing
pip-installed; the production image installs the wheel instead).

An installed package registers the plugin through its ``airflow.plugins`` entry point
(``pyproject.toml``). Airflow loads the plugins folder and the entry points both, so this module
defines no plugin then: ``genesys_sync`` is registered once either way
(``tests/ui/test_plugin_registration.py``). The plugin itself: ``genesys_sync.ui.plugin``.
"""

from __future__ import annotations

from genesys_sync.ui.plugin import registered_by_entry_point

if not registered_by_entry_point():
    # Airflow registers every plugin class it finds in this module's namespace.
    from genesys_sync.ui.plugin import GenesysSyncPlugin  # noqa: F401
