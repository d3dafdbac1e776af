"""Depth and alias limits that cost one pass over the document, whatever its fragments.

strawberry's QueryDepthLimiter and MaxAliasesLimiter walk a fragment again at
every spread: a 1 kB document of twenty fragments, each spreading the previous
one twice, makes them visit 2^20 nodes (seconds of CPU in the event loop,
before the depth or alias limit can even say no). These rules give the same
answers with the same messages, computing each fragment once.

- depth: the deepest nesting of fields with a selection (introspection fields
  are not descended into), as strawberry counts it;
- aliases: every aliased field, a fragment's counted once per spread.
"""

from __future__ import annotations

from collections.abc import Callable

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)


def _is_introspection(name: str) -> bool:
    return name.startswith("__")


class _Measure:
    """Memoized measures of a document's selection sets (a fragment is measured once)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.memo: dict[tuple[str, str], int] = {}
        self.visiting: set[tuple[str, str]] = set()

    def fragment(self, kind: str, name: str, measure: Callable[[SelectionSetNode], int]) -> int:
        key = (kind, name)
        if key in self.memo:
            return self.memo[key]
        fragment = self.fragments.get(name)
        if fragment is None or key in self.visiting:
            return 0  # unknown fragments and cycles are other rules' errors
        self.visiting.add(key)
        try:
            value = measure(fragment.selection_set)
        finally:
            self.visiting.discard(key)
        self.memo[key] = value
        return value

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        deepest = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if selection.selection_set and not _is_introspection(selection.name.value):
                    deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self.fragment("depth", selection.name.value, self.depth))
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        count = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                count += (1 if selection.alias else 0) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                count += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                count += self.fragment("aliases", selection.name.value, self.aliases)
        return count


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """A rule refusing operations nested deeper than `max_depth`."""

    class DepthLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(context.document)
            for operation in _operations(context.document):
                if measure.depth(operation.selection_set) > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            [operation],
                        )
                    )

    return DepthLimit


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    """A rule refusing documents with more than `max_aliases` aliased fields."""

    class AliasLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(context.document)
            total = sum(measure.aliases(op.selection_set) for op in _operations(context.document))
            if total > max_aliases:
                context.report_error(GraphQLError(f"{total} aliases found. Allowed: {max_aliases}"))

    return AliasLimit


__all__ = ["alias_rule", "depth_rule"]
