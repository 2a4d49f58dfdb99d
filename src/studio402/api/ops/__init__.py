"""Operator and browser-facing edges: /metrics, the /admin dashboard, the studio page, CORS."""
