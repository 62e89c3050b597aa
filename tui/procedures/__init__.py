"""One module per runbook; each exposes `PROCEDURE` (see tui.procedure.REGISTRY)."""
