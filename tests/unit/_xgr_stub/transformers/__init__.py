"""Minimal stand-in for transformers: xgrammar imports these two classes for type checks."""


class PreTrainedTokenizerBase:
    pass


class PreTrainedTokenizerFast(PreTrainedTokenizerBase):
    pass


class LogitsProcessor:
    pass
