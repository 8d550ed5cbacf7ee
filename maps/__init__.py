"""Map pages drawn with Folium from data handed in (pure: no database, no HTTP, no ``api``)."""
