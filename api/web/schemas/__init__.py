"""Response and request models of the API, one module per feature."""
