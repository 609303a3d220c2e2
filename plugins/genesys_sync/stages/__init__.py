"""The sync's stages as plain functions, one module each; the DAG's tasks are thin wrappers.

``validate`` (the run lock and the gate), ``plan`` (read the target, plan, write the batches),
``apply`` (one batch job: what the triggerer runs), ``finish`` (results, audit closure, report,
verdict); ``common`` holds what several of them share. The stages take ids, dates, params and
paths, keep everything bulky or personal on disk under the run's directory, and return small
dicts (counts and paths) fit for XCom. Importing this package imports none of them: the
triggerer loads ``apply`` alone (no state store, no SQLAlchemy).
"""
