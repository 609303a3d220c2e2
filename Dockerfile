# The image every Airflow component of docker-compose.yml runs: Airflow 3.3.2 plus the project's
# pinned runtime requirements, with the project's code where every component (triggerer
# included) can import it. Development tools stay out of it: the Genesys sandbox
# (plugins/genesys_sandbox, include/sandbox) and the demo/standalone CLI (genesys_sync.cli),
# and their packages (scim2-server, scim2-models: requirements-dev.txt).
#
#   docker build -t genesys-scim-sync .                   # the production image (last stage)
#   docker build --target sandbox -t genesys-sandbox .    # the sandbox, for trying without a tenant

# The code as shipped: the repository's dags/, plugins/ and include/ less the dev-only parts.
FROM apache/airflow:3.3.2-python3.11 AS code
COPY --chown=airflow:root dags/ /stage/dags/
COPY --chown=airflow:root plugins/ /stage/plugins/
COPY --chown=airflow:root include/ /stage/include/
RUN rm -rf /stage/plugins/genesys_sandbox /stage/include/sandbox \
        /stage/plugins/genesys_sync/cli.py \
    && find /stage -name __pycache__ -prune -exec rm -rf {} +

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
RUN pip install --no-cache-dir -r /opt/genesys-sync/requirements.txt \
        -c /opt/genesys-sync/constraints.txt \
    && pip check
COPY --from=code --chown=airflow:root /stage/dags/ /opt/airflow/dags/
COPY --from=code --chown=airflow:root /stage/plugins/ /opt/airflow/plugins/
COPY --from=code --chown=airflow:root /stage/include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow/plugins \
    GENESYS_SYNC_CONFIG=/opt/airflow/include/config/sync.yaml
