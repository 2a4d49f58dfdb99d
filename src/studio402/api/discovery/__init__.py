"""Discovery documents generated from the catalog: OpenAPI 3.1, llms.txt, agents.txt, /.well-known/x402.

Never hand-edited: every route, schema and price comes from `studio402.catalog`."""
