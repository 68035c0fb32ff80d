"""Fix until the tests pass: a test command per folder, a scratch copy, rounds within
token budgets, reviewed before anything lands."""
