"""CloudRig: cloud-integration runbooks as a guided, validated, repeatable tool.

The `tui` package holds the engine, the procedures, the API clients and the CLI;
only `tui.app` (and the sibling `screens` package) import Textual.
"""

__version__ = "0.1.0"
