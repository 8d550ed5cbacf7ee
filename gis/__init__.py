"""Pure geometry and algorithms: coordinate systems, the demo city, grid planning, file readers."""
