"""The fix loop's default limits, apart from the loop so a front end can show them in its help
without loading the engine (and llama.cpp) behind the loop."""

DEFAULT_ROUNDS = 3  # Aider's max_reflections; Cline stops after 3 consecutive mistakes
MAX_ROUNDS = 20
DEFAULT_TASK_BUDGET = 12_000  # thinking + answer tokens over all rounds
DEFAULT_ROUND_BUDGET = 4_000  # thinking + answer tokens in one round
