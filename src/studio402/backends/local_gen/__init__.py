"""The `diffusers` backend: open-weight models on the operator's own GPU (extra `studio402[local]`)."""
