"""Airflow operators of genesys-scim-sync: thin adapters over the core modules."""
