"""The HubSpot sandbox's endpoints, one module per API family; each `register(app, state)` adds its routes."""
