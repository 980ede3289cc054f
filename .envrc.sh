export DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_rollouts CELERY_BROKER_URL=redis://127.0.0.1:6379/0 TEST_BROKER_DB=7 VAR_DIR=/work/wt/rollouts/var DEBUG=1 REQUIRE_BROWSER=1
