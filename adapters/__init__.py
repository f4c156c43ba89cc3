"""The hub's protocol adapters, one package each (queue, soap, batch, direct), found through esb.registry."""
