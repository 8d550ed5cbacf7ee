"""The database layer: the embedded cluster, the engines, the table declarations, the queries."""
