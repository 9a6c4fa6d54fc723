"""Catalog, tensor cache, splits and loaders: everything between a source and the model."""
