"""REST API views: argument parsing, a call into services/selectors/turns, serialization."""
