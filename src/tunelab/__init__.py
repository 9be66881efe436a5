"""tunelab: fine-tune small causal language models with LoRA, evaluate them, see what changed.

Nothing heavy is imported here: `import tunelab` must stay cheap so the CLI starts fast.
"""

__version__ = "0.1.0"
