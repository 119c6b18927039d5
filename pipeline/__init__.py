"""bedrock-ledger: what Amazon Bedrock usage costs, who spent it, and whether the AWS bill agrees."""

from pipeline.memory import tune_allocators

tune_allocators()
