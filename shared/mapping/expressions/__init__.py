"""Entra's expression language for attribute mappings: parser (with positions), evaluator, and
the function library."""

from shared.mapping.expressions.evaluator import Evaluator
from shared.mapping.expressions.functions import FUNCTIONS, IgnoreFlow
from shared.mapping.expressions.parser import MAX_LENGTH, Call, Node, attributes, parse, to_source, walk

__all__ = [
    "FUNCTIONS",
    "MAX_LENGTH",
    "Call",
    "Evaluator",
    "IgnoreFlow",
    "Node",
    "attributes",
    "parse",
    "to_source",
    "walk",
]
