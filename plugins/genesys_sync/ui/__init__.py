"""The sync's pages in the Airflow UI: run list and chart, a run's plan, report, rejects and held
removals (``app``: the FastAPI app; ``views``: HTML; ``artifacts``: the run files' reader;
``plugin``: the Airflow plugin that serves them, registered by the package's entry point)."""
