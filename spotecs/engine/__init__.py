"""Generic plan/apply engine: knows steps and a DAG, nothing of ECS."""
