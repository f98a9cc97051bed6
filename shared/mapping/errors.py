"""The mapping library's errors: each names the mapping (its target attribute) and the problem."""

from __future__ import annotations

from typing import Any

from shared.errors import ErrorPolicy, GotosyncError


class MappingError(GotosyncError, ValueError):
    """A mapping that cannot be loaded or evaluated. `mapping` is the target attribute (or, for
    a scoping filter, the filter and clause); `problem` says what is wrong with it."""

    code = "UnprocessableEntity"
    policy = ErrorPolicy.SKIP  # one user's mapping failed; the others go on
    exit_code = 2
    http_status = 400
    heading = "mapping error"

    def __init__(self, mapping: str, problem: str) -> None:
        self.mapping = mapping
        self.problem = problem
        super().__init__(f"{mapping}: {problem}" if mapping else problem)

    def __reduce__(self) -> tuple[Any, ...]:  # errors cross process boundaries in logs and queues
        return (self.__class__, (self.mapping, self.problem))


class ExpressionSyntaxError(MappingError):
    """An expression that does not parse. `position` is 0-based; str() shows a caret excerpt."""

    def __init__(self, problem: str, position: int, expression: str, mapping: str = "") -> None:
        self.position = position
        self.expression = expression
        super().__init__(mapping, problem)

    def __str__(self) -> str:
        head = f"{self.mapping}: " if self.mapping else ""
        return f"{head}{self.problem} at position {self.position}\n{caret_excerpt(self.expression, self.position)}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.problem, self.position, self.expression, self.mapping))

    def for_mapping(self, mapping: str) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(self.problem, self.position, self.expression, mapping)


class ExpressionEvaluationError(MappingError):
    """An expression that parsed but cannot be evaluated for this object (bad argument types,
    an index out of range, a regular expression refused by the guard, ...)."""

    def __init__(self, problem: str, mapping: str = "", function: str = "") -> None:
        self.function = function
        super().__init__(mapping, f"{function}: {problem}" if function else problem)

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.problem, self.mapping), {"function": self.function})

    def for_mapping(self, mapping: str) -> ExpressionEvaluationError:
        error = ExpressionEvaluationError(self.problem, mapping)
        error.function = self.function
        return error


class MappingConfigError(MappingError):
    """Every problem found while loading a mapping file, reported together."""

    policy = ErrorPolicy.STOP

    def __init__(self, errors: list[MappingError], origin: str = "") -> None:
        self.errors = errors
        self.origin = origin
        where = f" in {origin}" if origin else ""
        lines = (str(e).replace("\n", "\n    ") for e in errors)
        problem = f"{len(errors)} problem(s){where}:\n" + "\n".join(f"  - {line}" for line in lines)
        super().__init__("", problem)

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.errors, self.origin))


def caret_excerpt(text: str, position: int, width: int = 60) -> str:
    """One line of `text` around `position` with a caret under it (newlines shown as spaces)."""
    start = max(0, position - width // 2)
    end = min(len(text), start + width)
    start = max(0, min(start, end - width))
    line = text[start:end].replace("\n", " ").replace("\r", " ").replace("\t", " ")
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return f"  {prefix}{line}{suffix}\n  {' ' * (len(prefix) + position - start)}^"
