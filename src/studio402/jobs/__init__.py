"""Jobs: the durable store, the worker pool that runs them through backends, events for SSE and webhooks."""
