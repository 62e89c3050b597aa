"""One module per runbook; each exposes `PROCEDURE` (listed in tui.registry.REGISTRY)."""
