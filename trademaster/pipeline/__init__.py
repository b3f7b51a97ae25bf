"""The training pipeline's steps, called by the Airflow DAG in ``dags/``."""
