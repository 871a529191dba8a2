"""Tools around trained generators: tiled inference, interpolation, projection, export."""
