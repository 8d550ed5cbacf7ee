"""The use cases: the one layer that the API, the CLI and the console call."""
