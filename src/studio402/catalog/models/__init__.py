"""Route schemas and prices, one module per model family."""
