"""Blob storage: uploads and results, behind the BlobStore port (local files by default)."""
