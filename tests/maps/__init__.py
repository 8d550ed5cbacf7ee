"""Map pages, tiles, OGC features and their scope."""
