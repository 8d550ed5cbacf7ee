"""The HTTP edge: app, dependencies, routers, error map, middleware."""
