"""Spatial SQL, one module per resource: bound values, PostGIS does the work."""
