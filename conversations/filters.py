"""The conversation list's filters: one django-filter FilterSet for REST and GraphQL.

Both surfaces hand it their raw arguments (`ConversationFilter.apply`); it validates
them (errors in the documented field-error shape, under the surface's own argument
names) and narrows the user's conversations. The keyset paging that follows is the
selectors' (`selectors.conversation_page`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from conversations.inputs import (
    MAX_SEARCH_CHARS,
    NO_PROJECT,
    ProjectFilter,
    parse_project_filter,
)
from conversations.models import Conversation
from core.errors import ValidationFailed

TRUE_VALUES = {"true", "1"}
FALSE_VALUES = {"false", "0"}


class StrictBooleanField(forms.Field):
    """true/false (or 1/0, any case): anything else is an error, not "no filter"
    (Django's NullBooleanField reads unknown values as None)."""

    def to_python(self, value: Any) -> bool | None:
        if value is None or value == "":
            return None
        lowered = str(value).lower()
        if lowered in TRUE_VALUES:
            return True
        if lowered in FALSE_VALUES:
            return False
        raise forms.ValidationError("must be true or false.", code="invalid")


class SearchField(forms.CharField):
    """Search text within MAX_SEARCH_CHARS, with the `too_long` code every text uses."""

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and len(value) > MAX_SEARCH_CHARS:
            raise forms.ValidationError(
                f"is longer than {MAX_SEARCH_CHARS} characters.", code="too_long"
            )


class ProjectField(forms.Field):
    """A project id, or `none` (conversations in no project); see
    `inputs.parse_project_filter`. An id that is not one of the user's matches nothing."""

    def to_python(self, value: Any) -> ProjectFilter:
        try:
            return parse_project_filter(value)
        except ValidationFailed:
            raise forms.ValidationError("must be a project id or none.", code="invalid") from None


class ProjectFilterField(django_filters.Filter):
    field_class = ProjectField


class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class SearchFilter(django_filters.CharFilter):
    field_class = SearchField


class ConversationFilter(django_filters.FilterSet):
    archived = StrictBooleanFilter(method="filter_archived")
    agent = django_filters.CharFilter(field_name="agent__slug")
    q = SearchFilter(field_name="title", lookup_expr="icontains")
    project = ProjectFilterField(method="filter_project")

    class Meta:
        model = Conversation
        fields: list[str] = []

    def filter_archived(
        self, queryset: QuerySet[Conversation], name: str, value: bool | None
    ) -> QuerySet[Conversation]:
        if value is None:
            return queryset
        return queryset.filter(archived_at__isnull=not value)

    def filter_project(
        self, queryset: QuerySet[Conversation], name: str, value: ProjectFilter
    ) -> QuerySet[Conversation]:
        if value is None:
            return queryset
        if value is NO_PROJECT:
            return queryset.filter(project__isnull=True)
        return queryset.filter(project_id=value)

    @classmethod
    def apply(
        cls,
        queryset: QuerySet[Conversation],
        arguments: Mapping[str, Any],
        *,
        names: Mapping[str, str] | None = None,
    ) -> QuerySet[Conversation]:
        """`queryset` narrowed by `arguments` (filter name -> raw value; None = absent).
        Bad values raise ValidationFailed naming the field as the caller calls it
        (`names`: filter name -> argument name, e.g. GraphQL's `search` for `q`)."""
        data = {name: value for name, value in arguments.items() if value is not None}
        filterset = cls(data=data, queryset=queryset)
        if not filterset.is_valid():
            names = names or {}
            fields = {
                (label := names.get(name, name)): [
                    {"code": error.code or "invalid", "message": f"{label} {error.messages[0]}"}
                    for error in errors
                ]
                for name, errors in filterset.errors.as_data().items()
            }
            first = next(iter(fields.values()))[0]["message"]
            raise ValidationFailed(first, fields=fields)
        return filterset.qs
