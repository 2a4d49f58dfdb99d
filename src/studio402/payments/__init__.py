"""Payments: offers, the x402 wire codec, the ledger and the engine that turns a signed payment into a job.

Nothing here does I/O directly; chain and database access go through ports."""
