"""Attribute mappings as Entra defines them: the mapping model and file format, the expression
language with every documented function, scoping filters, and matching precedence. Pure: no I/O
beyond reading a mapping file. See docs/mappings.md."""

from shared.mapping.config import (
    BUILTINS,
    AttributeMapping,
    MappingConfig,
    builtin,
    load_mapping,
    mapping_from_dict,
    mapping_from_json,
    validate,
)
from shared.mapping.errors import (
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    MappingConfigError,
    MappingError,
)
from shared.mapping.evaluate import Evaluation, evaluate_expression, evaluate_user
from shared.mapping.expressions import FUNCTIONS, parse
from shared.mapping.scoping import OPERATORS, ClauseResult, ScopingClause, ScopingFilter, scope_check
from shared.mapping.sources import COMPUTED_SOURCES, SourceContext, read_attribute, strip_guest_suffix

__all__ = [
    "BUILTINS",
    "COMPUTED_SOURCES",
    "FUNCTIONS",
    "OPERATORS",
    "AttributeMapping",
    "ClauseResult",
    "Evaluation",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
    "MappingConfig",
    "MappingConfigError",
    "MappingError",
    "ScopingClause",
    "ScopingFilter",
    "SourceContext",
    "builtin",
    "evaluate_expression",
    "evaluate_user",
    "load_mapping",
    "mapping_from_dict",
    "mapping_from_json",
    "parse",
    "read_attribute",
    "scope_check",
    "strip_guest_suffix",
    "validate",
]
