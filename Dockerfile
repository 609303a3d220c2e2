# The image every Airflow component of docker-compose.yml runs: Airflow 3.3.2 plus the project's
# pinned requirements, with the project's code where every component (triggerer included) can
# import it.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt constraints.txt /opt/genesys-sync/
RUN pip install --no-cache-dir -r /opt/genesys-sync/requirements.txt \
        -c /opt/genesys-sync/constraints.txt \
    && pip check

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow/plugins \
    GENESYS_SYNC_CONFIG=/opt/airflow/include/config/sync.yaml
