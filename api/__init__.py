"""Wangge, the application: settings, errors, store, auth, services, web, cli."""
