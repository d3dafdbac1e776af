"""What an operation can cost, measured on its document before it runs.

- `operation_cost`: how many objects the response can hold. Depth, alias and
  token limits bound a document's size, not its answer: 30 aliases of
  `messages(last: 200) { nodes { text content } }` fit every document limit and
  answered 386 MB. The cost multiplies page sizes through aliases, fragments
  and nesting (GitHub's node limit, Shopify's query cost):
  - a field returning an object costs 1 each time it can appear; scalars are free;
  - a paged field (one with `first`/`last`: a connection) loads up to its page
    size of rows and costs that; the lists directly inside it (`edges`, `nodes`)
    appear once per row, so what they hold is multiplied by the page size;
  - the page size is `first`/`last` as given (literal, variable, or the
    variable's default), CONFAB_DEFAULT_PAGE_SIZE when absent, and at most
    CONFAB_MAX_PAGE_SIZE (a larger page is refused by the resolver before it
    loads anything);
  - other lists (`agents`, an agent's `contextVariables`, a payload's `errors`)
    hold a few server-defined items and count once;
  - every alias counts; fields are merged by response key as the executor merges
    them (a fragment spread twice in one selection is there once), so a fragment
    "bomb" costs what its answer holds, measured in one pass.
- `mutation_field_count`: how many mutations an operation runs (each spends one
  request of the user's rate).
- `json_size`: the size of a result as JSON on the wire, counted without building it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_interface_type,
    is_leaf_type,
    is_object_type,
)
from graphql.utilities import get_operation_ast

PAGE_ARGUMENTS = ("first", "last")


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        if isinstance(type_, GraphQLList):
            return True
        type_ = type_.of_type
    return False


Selections = list[tuple[SelectionSetNode, Any]]


class _Cost:
    """Measures a valid operation as graphql-core executes it: fields are collected by
    response key (the same field spread twice is one field in the answer), and within
    one selection set a fragment is expanded once, however often it is spread."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        *,
        default_page: int,
        max_page: int,
    ) -> None:
        self.schema = schema
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        # Variables as sent (not yet coerced: execution refuses wrong ones itself).
        self.variables = dict(variables) if isinstance(variables, Mapping) else {}
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)
        self.default_page = default_page
        self.max_page = max_page

    def page_size(self, field: FieldNode) -> int:
        sizes = []
        for argument in field.arguments or ():
            if argument.name.value not in PAGE_ARGUMENTS:
                continue
            value: Any = argument.value
            if isinstance(value, VariableNode):
                value = self.variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                value = int(value.value)
            elif isinstance(value, NullValueNode):
                value = None
            if isinstance(value, int) and not isinstance(value, bool):
                sizes.append(value)
        size = max(sizes) if sizes else self.default_page
        return min(max(size, 1), self.max_page)

    def collect(self, selections: Selections) -> dict[tuple[str, str], tuple[Any, list[FieldNode]]]:
        """The fields of these selection sets, by (parent type, response key)."""
        fields: dict[tuple[str, str], tuple[Any, list[FieldNode]]] = {}
        expanded: set[str] = set()
        pending = list(selections)
        while pending:
            selection_set, parent = pending.pop()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    key = (parent.name, (selection.alias or selection.name).value)
                    fields.setdefault(key, (parent, []))[1].append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    inner = self.schema.get_type(condition.name.value) if condition else parent
                    pending.append((selection.selection_set, inner))
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in expanded:
                        continue
                    expanded.add(name)
                    inner = self.schema.get_type(fragment.type_condition.name.value)
                    pending.append((fragment.selection_set, inner))
        return fields

    def selections(self, selections: Selections, page: int | None) -> int:
        """The cost of one object with these selections; `page` is the page size when the
        object is a connection (its lists hold one item per row)."""
        return sum(
            self.field(parent, nodes, page) for parent, nodes in self.collect(selections).values()
        )

    def field(self, parent: Any, nodes: list[FieldNode], page: int | None) -> int:
        if not (is_object_type(parent) or is_interface_type(parent)):
            return 0  # only __typename can be selected on a union
        definition = parent.fields.get(nodes[0].name.value)
        if definition is None:
            return 0  # __typename or introspection
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        inner = [(node.selection_set, named) for node in nodes if node.selection_set]
        if any(argument in definition.args for argument in PAGE_ARGUMENTS):
            # A connection: its rows are what it costs (the page object itself is free).
            rows = max(self.page_size(node) for node in nodes)
            return rows + self.selections(inner, rows)
        each = 1 + self.selections(inner, None)
        appears = page if page is not None and _is_list(definition.type) else 1
        return appears * each


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    *,
    default_page: int,
    max_page: int,
) -> int:
    """The cost of the operation that would run (0 when there is none to run)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    measure = _Cost(
        schema,
        document,
        operation,
        variables or {},
        default_page=default_page,
        max_page=max_page,
    )
    return measure.selections([(operation.selection_set, root)], None)


def mutation_field_count(document: DocumentNode, operation_name: str | None) -> int:
    """How many mutation fields the operation runs (0 for a query or subscription): the
    distinct response keys at its root, through fragments and aliases."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.MUTATION:
        return 0
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    keys: set[str] = set()
    seen: set[str] = set()
    pending: list[SelectionSetNode] = [operation.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                if not selection.name.value.startswith("__"):
                    keys.add((selection.alias or selection.name).value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    return len(keys)


def _string_size(text: str) -> int:
    """Bytes of a JSON string as sent: with `ensure_ascii` (json.dumps' default, which
    strawberry's transports use) every other character is a 6-byte `\\uXXXX` escape, two
    of them outside the Basic Multilingual Plane."""
    if text.isascii():
        return len(text) + 2
    ascii_count = len(text.encode("ascii", "ignore"))
    utf16_units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    return ascii_count + 6 * (utf16_units - ascii_count) + 2


def json_size(value: Any, limit: int) -> int:
    """The size of `value` as compact JSON, counted until it passes `limit` (the count so
    far is returned then): a refused answer is never built. Escapes of quotes and control
    characters are not counted."""
    size = 0
    pending = [value]
    while pending and size <= limit:
        item = pending.pop()
        if isinstance(item, str):
            size += _string_size(item)
        elif isinstance(item, dict):  # results hold plain dicts and lists
            size += 1 + len(item)  # braces, colons and commas
            for key, inner in item.items():
                size += _string_size(str(key))
                pending.append(inner)
        elif isinstance(item, list | tuple):
            size += 1 + max(len(item), 1)
            pending.extend(item)
        elif isinstance(item, bool) or item is None:
            size += 5
        else:
            size += len(str(item))
    return size


__all__ = ["json_size", "mutation_field_count", "operation_cost"]
