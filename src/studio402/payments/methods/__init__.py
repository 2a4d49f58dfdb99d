"""Payment methods, one module per scheme x network family."""
