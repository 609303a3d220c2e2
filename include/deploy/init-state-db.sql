-- The sync's state store lives beside Airflow's metadata, in its own database.
CREATE DATABASE genesys_sync OWNER airflow;
