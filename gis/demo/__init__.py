"""The Ma'anshan demo city generator (pure: numpy, shapely 2, geopandas; no DB, no HTTP).

>>> city = generate_city(communities=6)
>>> city.tables["grids"].head()
"""

from gis.demo.city import TABLES, DemoCity, generate_city, reference_time

__all__ = ["TABLES", "DemoCity", "generate_city", "reference_time"]
