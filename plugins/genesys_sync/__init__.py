"""genesys-scim-sync: keep Genesys Cloud users in sync with an HRIS export over SCIM 2.0.

The pipeline's stages, each a module: ``export`` (read the HRIS export), ``validation`` (the
Great Expectations gate), ``mapping`` (rows to desired SCIM users), ``plan`` (diff against the
target), ``apply`` (run the plan's batches), ``report`` (run report, audit trail, webhook).
``stages`` runs them as the DAG's tasks do, one module per stage; ``scim`` is the async SCIM
client; ``state`` the SQL store kept between runs. Only the ``hooks``, ``operators``,
``sensors``, ``triggers`` and ``notifiers`` packages import Airflow.
"""
