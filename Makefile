# The two commands a newcomer needs (see README.md).
.PHONY: run test

run:  ## Run Perron here: SQLite, jobs in process, the demo communes at http://<slug>.localhost:8000
	@infra/dev/run.sh

test:  ## Lint, type checks and the whole test suite on SQLite and on PostgreSQL + Redis
	@infra/dev/test.sh
