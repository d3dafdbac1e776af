"""LLM plumbing: prompt rendering, chat model providers and tools."""
