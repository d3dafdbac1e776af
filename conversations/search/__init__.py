"""Full-text search over the user's messages (issue 19 item 1).

PostgreSQL: a GIN index on `confab_search_vector(text)`, an immutable SQL function (the
words of the text, 'simple' configuration, plus the CJK character bigrams of the text);
queries use `websearch_to_tsquery` (quotes, `-`, `or`) and rank with `ts_rank`. SQLite: an
FTS5 table of the same words and bigrams, kept by triggers on the message table (the
bigrams come from `confab_search_text`, a Python function registered on every SQLite
connection); queries are translated from the same websearch syntax, ranked by bm25.

Korean, Chinese and Japanese have no spaces between words (Korean has particles glued
to them: 커피를), so a word index cannot find 커피 in 커피를 주세요. Both backends index
every run of CJK characters as overlapping character bigrams (커피 피를) next to the
words, and a query's CJK runs become phrases of their bigrams: a two-character query
finds every text containing those two characters in a row.
"""
