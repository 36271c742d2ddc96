"""Adapters: the only place that calls AWS (S3, DynamoDB, SageMaker runtime, Step Functions)."""
