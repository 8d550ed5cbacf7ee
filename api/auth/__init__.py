"""Bearer tokens and who may do what."""
