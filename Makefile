# The two commands. Everything else lives in scripts/.
.PHONY: run test

run:
	scripts/run

test:
	scripts/check
