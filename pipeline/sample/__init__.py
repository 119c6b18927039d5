"""Realistic, seeded sample data for demos and tests: Bedrock invocation logs exactly as AWS writes them."""
