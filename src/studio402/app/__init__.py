"""Application services: one use case each (a paid request, a job's lifecycle, the reconciler).

They sit between the edges (api/, cli/) and the adapters (payments, db, jobs, media, backends, chain): they
import those, never an edge nor the composition root (tests/unit/test_layering.py checks it)."""
