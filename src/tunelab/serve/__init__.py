"""Use a fine-tuned model the way people use models: an OpenAI-compatible server over a base
model and its adapters (`server`), an interactive terminal chat (`chat`), and the registry both
load models through (`registry`). Merging an adapter into its base lives in `tunelab.export`.

Nothing heavy is imported here: `tunelab serve --help` stays instant.
"""
