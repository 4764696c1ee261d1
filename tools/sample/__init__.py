"""The sample-dataset builder: ``make data`` runs it; it is not shipped in the ``aiornot`` wheel.

:mod:`tools.sample.builder` reads ``data/sources.toml`` and builds ``data/sample/``;
:mod:`tools.sample.dcgan` generates the DCGAN faces with numpy; :mod:`tools.sample.qt_resources`
reads the Qt resource bundles some real photos ship in.
"""

from tools.sample.builder import main

__all__ = ["main"]
