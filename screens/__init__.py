"""CloudRig's Textual screens: home, wizard, preview, progress, dashboard.

Every screen is generic: it is built from a procedure's declarations (pages, field
specs, plan views, checks), so adding a procedure needs no code here. Only this
package and `tui/app.py` import Textual; the engine never imports this package.
"""
