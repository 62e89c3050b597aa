"""One module per remote API. Clients know nothing of procedures or screens."""
