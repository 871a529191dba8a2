"""Small shared helpers: image grids and atomic file writes."""
