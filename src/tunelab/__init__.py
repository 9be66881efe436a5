"""tunelab: fine-tune small causal language models with LoRA, evaluate them, see what changed.

Nothing heavy is imported here: `import tunelab` must stay cheap so the CLI starts fast and
the pretraining recipe can run where only torch and transformers are installed.
"""

__version__ = "0.1.0"
