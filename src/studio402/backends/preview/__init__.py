"""The preview backend: real, deterministic media on a CPU, labelled "preview" (procedural, not AI)."""
