# The image every Airflow component of docker-compose.yml runs: Airflow 3.3.2 plus the project's
# pinned runtime requirements and the sync installed as a wheel, so every component (triggerer
# included) imports it and Airflow finds its entry points. Development tools stay out of it:
# the Genesys sandbox (plugins/genesys_sandbox, include/sandbox), the demo/standalone CLI
# (genesys_sync.cli) and their packages (scim2-server, scim2-models: requirements-dev.txt).
#
#   docker build -t genesys-scim-sync .                   # the production image (last stage)
#   docker build --target sandbox -t genesys-sandbox .    # the sandbox, for trying without a tenant

# The code as shipped: the repository's dags/, plugins/ and include/ less the dev-only parts, and
# the sync built as a wheel from that pruned copy (its entry points register the Genesys Cloud
# connection type and the results UI plugin wherever it is installed).
FROM apache/airflow:3.3.2-python3.11 AS code
COPY --chown=airflow:root dags/ /stage/dags/
COPY --chown=airflow:root plugins/ /stage/plugins/
COPY --chown=airflow:root include/ /stage/include/
COPY --chown=airflow:root pyproject.toml README.md requirements.txt /stage/
RUN rm -rf /stage/plugins/genesys_sandbox /stage/include/sandbox \
        /stage/plugins/genesys_sync/cli.py \
    && find /stage -name __pycache__ -prune -exec rm -rf {} + \
    && pip wheel --no-deps --wheel-dir /stage/dist /stage

# The local Genesys Cloud sandbox (development only): docker compose --profile sandbox.
FROM apache/airflow:3.3.2-python3.11 AS sandbox
COPY --chown=airflow:root requirements-dev.txt constraints.txt /opt/genesys-sync/
RUN grep -E '^scim2-(server|models)==' /opt/genesys-sync/requirements-dev.txt \
        > /opt/genesys-sync/requirements-sandbox.txt \
    && pip install --no-cache-dir -r /opt/genesys-sync/requirements-sandbox.txt \
        -c /opt/genesys-sync/constraints.txt
COPY --chown=airflow:root plugins/genesys_sandbox/ /opt/airflow/plugins/genesys_sandbox/
COPY --chown=airflow:root include/sandbox/ /opt/airflow/include/sandbox/
RUN mkdir -p /opt/airflow/sandbox-data
ENV PYTHONPATH=/opt/airflow/plugins
ENTRYPOINT ["python", "-m", "genesys_sandbox"]

# The production image (the default target).
FROM apache/airflow:3.3.2-python3.11 AS production
COPY --chown=airflow:root requirements.txt constraints.txt /opt/genesys-sync/
COPY --from=code --chown=airflow:root /stage/dist/ /opt/genesys-sync/dist/
RUN pip install --no-cache-dir -r /opt/genesys-sync/requirements.txt \
        -c /opt/genesys-sync/constraints.txt \
    && pip install --no-cache-dir --no-deps /opt/genesys-sync/dist/genesys_scim_sync-*.whl \
    && pip check
COPY --from=code --chown=airflow:root /stage/dags/ /opt/airflow/dags/
COPY --from=code --chown=airflow:root /stage/include/ /opt/airflow/include/
ENV GENESYS_SYNC_CONFIG=/opt/airflow/include/config/sync.yaml
